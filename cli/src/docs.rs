//! The docs against the CLI itself: docs/reference.md's CLI table names
//! exactly `trailkeep`'s subcommands, its environment-variable table every
//! variable an option reads, and every `trailkeep …` command written in
//! README.md or docs/*.md uses a real subcommand with real options.

use std::path::Path;

use clap::CommandFactory;

use crate::Cli;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The backticked first cells of the table under `## heading`.
fn table(text: &str, heading: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| l.trim() != format!("## {heading}"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|l| l.trim().strip_prefix('|'))
        .filter_map(|cell| {
            let cell = cell.trim().strip_prefix('`')?;
            Some(cell[..cell.find('`')?].to_owned())
        })
        .collect()
}

#[test]
fn the_reference_names_every_subcommand_and_every_env_var_an_option_reads() {
    let reference = read("docs/reference.md");
    let cli = Cli::command();
    let mut subcommands: Vec<String> = cli
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    subcommands.sort();
    let mut listed: Vec<String> = table(&reference, "CLI")
        .into_iter()
        // `trailkeep lookup-events` or `lookup-events`.
        .map(|c| c.trim_start_matches("trailkeep ").to_owned())
        .map(|c| c.split_whitespace().next().unwrap_or_default().to_owned())
        .collect();
    listed.sort();
    listed.dedup();
    assert_eq!(listed, subcommands, "docs/reference.md \"## CLI\"");

    let env = table(&reference, "Environment variables");
    let mut read_by_options = Vec::new();
    for command in std::iter::once(&cli).chain(cli.get_subcommands()) {
        for arg in command.get_arguments() {
            if let Some(name) = arg.get_env() {
                read_by_options.push(name.to_string_lossy().into_owned());
            }
        }
    }
    assert!(read_by_options.contains(&"TRAILKEEP_STATE_TABLE".to_owned()));
    for name in read_by_options {
        assert!(
            env.contains(&name),
            "{name} (an option's environment variable) is not in docs/reference.md"
        );
    }
}

/// Every `trailkeep …` command in a shell block or inline code span of the
/// docs: (where, the words after `trailkeep`).
fn written_commands() -> Vec<(String, Vec<String>)> {
    let mut paths = vec!["README.md".to_owned()];
    for entry in std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            paths.push(format!("docs/{name}"));
        }
    }
    let mut out = Vec::new();
    for path in paths {
        let text = read(&path);
        let (mut fenced, mut in_shell) = (false, false);
        let mut logical = String::new();
        // Prose is read a paragraph (or table row) at a time, so a code
        // span that wraps onto the next line is read whole.
        let mut paragraph = String::new();
        let lines: Vec<&str> = text.lines().chain([""]).collect();
        for (i, line) in lines.iter().enumerate() {
            let mut pieces: Vec<String> = Vec::new();
            let fence = line.trim_start().strip_prefix("```");
            let ends_paragraph =
                fence.is_some() || line.trim().is_empty() || line.trim_start().starts_with('|');
            if !fenced && ends_paragraph {
                pieces.extend(paragraph.split('`').skip(1).step_by(2).map(str::to_owned));
                paragraph.clear();
            }
            if let Some(lang) = fence {
                fenced = !fenced;
                in_shell = fenced && matches!(lang.trim(), "sh" | "bash" | "shell" | "console");
            } else if in_shell {
                logical.push_str(line.trim_end_matches('\\'));
                logical.push(' ');
                if line.ends_with('\\') {
                    continue;
                }
                let code = logical.split(" #").next().unwrap_or_default().to_owned();
                pieces.extend(
                    code.split(['|', ';', '(', ')'])
                        .flat_map(|p| p.split("&&"))
                        .map(str::to_owned),
                );
                logical.clear();
            } else if !fenced {
                paragraph.push_str(line.trim());
                paragraph.push(' ');
            }
            for piece in pieces {
                let words: Vec<&str> = piece
                    .split_whitespace()
                    .skip_while(|w| w.contains('=') && !w.starts_with('-'))
                    .collect();
                let is_cli = words.first().is_some_and(|w| {
                    *w == "trailkeep" || w.ends_with("/trailkeep") || w.contains("$TRAILKEEP\"")
                });
                if is_cli && words.len() > 1 {
                    out.push((
                        format!("{path}:{}", i + 1),
                        words[1..].iter().map(|w| w.to_string()).collect(),
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn every_trailkeep_command_in_the_docs_has_a_real_subcommand_and_real_options() {
    let cli = Cli::command();
    let global: Vec<String> = cli
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .chain(["help".into(), "version".into()])
        .collect();
    let commands = written_commands();
    assert!(
        commands.len() > 20,
        "the docs show the CLI in use: {commands:?}"
    );
    let mut wrong = Vec::new();
    for (at, words) in commands {
        let mut words = words.iter().map(String::as_str);
        // Options before the subcommand, with their values.
        let sub = loop {
            match words.next() {
                Some(w) if w.starts_with("--") => {
                    let flag = w
                        .trim_start_matches("--")
                        .split('=')
                        .next()
                        .unwrap_or_default();
                    if !global.iter().any(|g| g == flag) {
                        wrong.push(format!("{at}: no global option --{flag}"));
                    }
                    if !w.contains('=') && flag != "help" && flag != "version" {
                        words.next();
                    }
                }
                other => break other,
            }
        };
        let Some(sub) = sub else { continue };
        // A placeholder (`trailkeep …`, `trailkeep <verb>`) is not a command.
        if !sub.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
            continue;
        }
        let Some(command) = cli.find_subcommand(sub) else {
            wrong.push(format!("{at}: no subcommand {sub:?}"));
            continue;
        };
        let options: Vec<&str> = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .collect();
        for w in words.filter(|w| w.starts_with("--")) {
            let flag = w
                .trim_start_matches("--")
                .split('=')
                .next()
                .unwrap_or_default();
            if !options.contains(&flag) && !global.iter().any(|g| g == flag) {
                wrong.push(format!("{at}: `trailkeep {sub}` has no option --{flag}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
