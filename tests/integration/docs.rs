//! The docs against what they describe, so they cannot drift silently:
//! docs/reference.md's tables name exactly the template's parameters and
//! outputs and every environment variable a function is given or the code
//! reads; every parameter, output and environment variable the docs name
//! exists; every shell block of README.md and docs/operations.md says who
//! runs it (a script of the repo, checked to contain its commands) or that
//! it needs a real AWS account. (The CLI's subcommands and flags are checked
//! by the CLI's own tests, cli/src/docs.rs.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_yaml_ng::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// README.md and every docs/*.md: (path, text).
fn docs() -> Vec<(String, String)> {
    let mut paths = vec!["README.md".to_owned()];
    let mut in_docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    in_docs.sort();
    paths.extend(in_docs);
    paths.into_iter().map(|p| (p.clone(), read(&p))).collect()
}

/// The backticked names in the first column of the table under `## heading`.
fn table(text: &str, heading: &str) -> BTreeSet<String> {
    let mut lines = text
        .lines()
        .skip_while(|l| l.trim() != format!("## {heading}"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "));
    let name = Regex::new(r"^\|\s*`([^`]+)`").unwrap();
    let mut names = BTreeSet::new();
    for line in lines.by_ref() {
        if let Some(c) = name.captures(line) {
            names.insert(c[1].to_owned());
        }
    }
    assert!(
        !names.is_empty(),
        "docs/reference.md has no table under \"## {heading}\""
    );
    names
}

/// A template's top-level section's keys.
fn keys(doc: &Value, section: &str) -> BTreeSet<String> {
    doc.get(section)
        .and_then(Value::as_mapping)
        .map(|m| {
            m.keys()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn yaml(path: &str) -> Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every environment variable template.yaml sets on a function (Globals
/// included): name → the functions.
fn template_env() -> BTreeMap<String, BTreeSet<String>> {
    let t = yaml("template.yaml");
    let mut env: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut add = |who: &str, props: &Value| {
        if let Some(vars) = props
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
        {
            for name in vars.keys().filter_map(Value::as_str) {
                env.entry(name.to_owned())
                    .or_default()
                    .insert(who.to_owned());
            }
        }
    };
    if let Some(globals) = t.get("Globals").and_then(|g| g.get("Function")) {
        add("Globals", globals);
    }
    for (id, r) in t["Resources"].as_mapping().unwrap() {
        if r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function") {
            add(id.as_str().unwrap(), &r["Properties"]);
        }
    }
    env
}

/// The text of every file under `dir` whose name ends in one of `exts`.
fn sources(dir: &Path, exts: &[&str], out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "node_modules") {
                sources(&path, exts, out);
            }
        } else if exts.iter().any(|x| name.ends_with(x)) {
            out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            out.push('\n');
        }
    }
}

/// The code and scripts an environment variable can be read in: Rust
/// sources (as a string literal) and the shell and Python scripts.
fn code_reads(name: &str, code: &str) -> bool {
    code.contains(&format!("\"{name}\""))
        || code.contains(&format!("${name}"))
        || code.contains(&format!("${{{name}"))
        || code.contains(&format!("environ[\"{name}\"]"))
        || code.contains(&format!("{name}="))
}

fn all_code() -> String {
    let mut code = String::new();
    for dir in [
        "shared",
        "functions",
        "cli",
        "dev",
        "tests",
        "scripts",
        ".ci",
    ] {
        sources(&root().join(dir), &[".rs", ".sh", ".py", "run"], &mut code);
    }
    code
}

#[test]
fn the_reference_tables_name_exactly_the_templates_parameters_outputs_and_env_vars() {
    let reference = read("docs/reference.md");
    let t = yaml("template.yaml");
    assert_eq!(
        table(&reference, "Parameters"),
        keys(&t, "Parameters"),
        "docs/reference.md \"## Parameters\" vs template.yaml Parameters"
    );
    assert_eq!(
        table(&reference, "Outputs"),
        keys(&t, "Outputs"),
        "docs/reference.md \"## Outputs\" vs template.yaml Outputs"
    );
    let documented = table(&reference, "Environment variables");
    let set = template_env();
    let missing: Vec<_> = set.keys().filter(|n| !documented.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "set by template.yaml, not in docs/reference.md: {missing:?}"
    );
    let code = all_code();
    let unknown: Vec<_> = documented
        .iter()
        .filter(|n| !set.contains_key(*n) && !code_reads(n, &code))
        .collect();
    assert!(
        unknown.is_empty(),
        "in docs/reference.md, but neither set by template.yaml nor read by any code: {unknown:?}"
    );
}

/// The parameter table's type, default and allowed values are the
/// template's: a default changed in one place fails here.
#[test]
fn the_reference_gives_each_parameters_type_default_and_allowed_values() {
    let reference = read("docs/reference.md");
    let t = yaml("template.yaml");
    let rows: Vec<Vec<String>> = reference
        .lines()
        .skip_while(|l| l.trim() != "## Parameters")
        .take_while(|l| !l.starts_with("## CLI") && !l.starts_with("## Outputs"))
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.split('|').map(|c| c.trim().to_owned()).collect())
        .collect();
    assert_eq!(rows.len(), keys(&t, "Parameters").len());
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("{other:?}"),
    };
    let mut wrong = Vec::new();
    for row in rows {
        // | `Name` | type | default | allowed | meaning |
        let (name, kind, default, allowed) = (row[1].trim_matches('`'), &row[2], &row[3], &row[4]);
        let p = &t["Parameters"][name];
        if kind != p["Type"].as_str().unwrap() {
            wrong.push(format!("{name}: type {kind}, template {:?}", p["Type"]));
        }
        let declared = p.get("Default").map(text).unwrap_or_default();
        let shown = default.replace(['`', '"'], "");
        let agrees = if declared.is_empty() {
            shown.starts_with("empty") || shown.starts_with("none")
        } else {
            shown.starts_with(&declared)
        };
        if !agrees {
            wrong.push(format!("{name}: default {default}, template {declared:?}"));
        }
        for v in p
            .get("AllowedValues")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .chain(p.get("MinValue"))
            .chain(p.get("MaxValue"))
        {
            if !allowed.contains(&text(v)) {
                wrong.push(format!(
                    "{name}: {} is not in its allowed values {allowed}",
                    text(v)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The decoy check: the env var reader is not fooled into accepting a
/// name by a prefix or a mention in prose.
#[test]
fn the_env_var_check_accepts_a_read_and_refuses_a_stranger() {
    let code = r#"let t = env.required("HISTORY_TABLE")?; echo "${STATE_TABLE:-x}""#;
    assert!(code_reads("HISTORY_TABLE", code));
    assert!(code_reads("STATE_TABLE", code));
    assert!(!code_reads("HISTORY", code));
    assert!(!code_reads("HISTORY_TABLES", code));
}

#[test]
fn every_parameter_output_and_env_var_the_docs_name_exists() {
    let t = yaml("template.yaml");
    let mut parameters = keys(&t, "Parameters");
    let mut outputs = keys(&t, "Outputs");
    for other in ["signing-key.yaml", "forwarder.yaml"] {
        let other = yaml(other);
        parameters.extend(keys(&other, "Parameters"));
        outputs.extend(keys(&other, "Outputs"));
    }
    let env = table(&read("docs/reference.md"), "Environment variables");

    // `Name=value` as --parameter-overrides takes it, in code and in prose.
    let override_ = Regex::new(r"(?:^|[\s`'\x22])([A-Z][a-z]+[A-Za-z0-9]*)=").unwrap();
    // "output `Name`", "outputs `A` and `B`", "(output Name)".
    let output = Regex::new(r"\boutputs? `?([A-Z][A-Za-z0-9]+)`?").unwrap();
    // An environment variable: UPPER_CASE in backticks (alone or `NAME=…`).
    let env_var = Regex::new(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:=[^`]*)?`").unwrap();
    let mut wrong = Vec::new();
    for (path, text) in docs() {
        for c in override_.captures_iter(&text) {
            let name = &c[1];
            // ISO-8601 style strings and SQL are not overrides.
            if !parameters.contains(name) && !NOT_PARAMETERS.contains(&name) {
                wrong.push(format!("{path}: parameter {name}= is not in template.yaml"));
            }
        }
        for c in output.captures_iter(&text) {
            let name = &c[1];
            if !outputs.contains(name) && !NOT_OUTPUTS.contains(&name) {
                wrong.push(format!("{path}: output {name} is not in template.yaml"));
            }
        }
        for c in env_var.captures_iter(&text) {
            let name = &c[1];
            if !env.contains(name) && !NOT_ENV_VARS.contains(&name) {
                wrong.push(format!(
                    "{path}: `{name}` looks like an environment variable but is not in docs/reference.md"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Backticked UPPER_CASE words the docs use that are values, not
/// environment variables: enum values of AWS APIs and of the template,
/// constants of the code, the message attributes EventBridge gives a
/// dead letter, and placeholders.
const NOT_ENV_VARS: &[&str] = &[
    "AWS_IAM",
    "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
    "S3_OBJECT_EVENTS",
    "MARKER_DAYS",
    "MAX_FIRST_AHEAD",
    "ERROR_CODE",
    "ERROR_MESSAGE",
    "RULE_ARN",
    "TARGET_ARN",
    "MESSAGE_ID",
    "QUEUE_URL",
    "LOG_BUCKET",
    "INGEST_QUEUE_ARN",
    "ON_DEMAND",
    "PAY_PER_REQUEST",
    "RSA_2048",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "SIGN_VERIFY",
    "NEW_KEY_ARN",
    "KEY_ARN",
    "OLD_ARN",
    "NEW_ARN",
];

/// `Word=` forms in the docs that are not template parameters: request
/// fields of AWS APIs and CLI shorthand (`AttributeKey=…`, `Name=…`).
const NOT_PARAMETERS: &[&str] = &[
    // create-stack-set's --parameters ParameterKey=…,ParameterValue=…
    "ParameterKey",
    "AttributeKey",
    "AttributeValue",
    "ScanIndexForward",
    "MessageType",
    "Name",
    "Value",
    "Key",
    "Values",
    "Enabled",
    "Type",
    // create-stack-instances' --deployment-targets OrganizationalUnitIds=…
    "OrganizationalUnitIds",
];

/// Words after "output" that are not stack outputs.
const NOT_OUTPUTS: &[&str] = &["Event", "Events", "Records", "JSON", "FILE"];

/// Each shell block of README.md and docs/operations.md starts with
/// `# needs a real AWS account` or `# run by <path>`; a block run by a
/// script has each of its commands (program and subcommand) in it.
#[test]
fn every_command_in_the_readme_and_runbook_is_run_here_or_marked_for_aws() {
    let mut wrong = Vec::new();
    for path in ["README.md", "docs/operations.md"] {
        for (line, block) in shell_blocks(&read(path)) {
            let first = block.first().map(String::as_str).unwrap_or_default();
            if first == "# needs a real AWS account" {
                continue;
            }
            let Some(runner) = first.strip_prefix("# run by ") else {
                wrong.push(format!(
                    "{path}:{line}: a shell block without `# run by <path>` or `# needs a real AWS account`"
                ));
                continue;
            };
            let Ok(script) = std::fs::read_to_string(root().join(runner.trim())) else {
                wrong.push(format!("{path}:{line}: {runner} is not a file of the repo"));
                continue;
            };
            for command in commands(&block) {
                if !script.contains(&command) {
                    wrong.push(format!("{path}:{line}: `{command}` is not run by {runner}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Commands written inline in README.md and docs/operations.md (a code
/// span starting with `aws`, `sam`, `trailkeep`, `cargo` or a script) are
/// held to the same rule as blocks: each is run by the local run or the
/// test scripts, or is a command of a block marked for a real AWS account,
/// or its paragraph (table row) says `real AWS account`.
#[test]
fn every_inline_command_in_the_readme_and_runbook_is_run_here_or_marked_for_aws() {
    let normalize = |text: &str| {
        text.replace("\"$TRAILKEEP\" ", "trailkeep ")
            .replace("\"$SAM_BIN/sam\" ", "sam ")
            .replace("scripts/sam.sh ", "sam ")
    };
    let runners = normalize(
        &["scripts/local-run.sh", "scripts/test.sh", ".ci/run"]
            .map(read)
            .join("\n"),
    );
    let span = Regex::new(r"`([^`]+)`").unwrap();
    let command =
        Regex::new(r"^(aws|sam|trailkeep|trailkeep-dev|cargo|scripts/\S+)\s+[a-z-]").unwrap();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for path in ["README.md", "docs/operations.md"] {
        let text = read(path);
        let marked: Vec<String> = shell_blocks(&text)
            .into_iter()
            .filter(|(_, b)| b.first().map(String::as_str) == Some("# needs a real AWS account"))
            .flat_map(|(_, b)| commands(&b.iter().map(|l| normalize(l)).collect::<Vec<_>>()))
            .collect();
        for paragraph in prose(&text) {
            for c in span.captures_iter(&paragraph) {
                let inline = normalize(&c[1]);
                if !command.is_match(&inline) {
                    continue;
                }
                checked += 1;
                let Some(run) = commands(std::slice::from_ref(&inline)).pop() else {
                    continue;
                };
                if !runners.contains(&run)
                    && !marked.contains(&run)
                    && !paragraph.contains("real AWS account")
                {
                    wrong.push(format!("{path}: `{inline}` is neither run here nor marked"));
                }
            }
        }
    }
    assert!(checked > 10, "the check saw the inline commands: {checked}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The prose of a Markdown text, fenced blocks left out: its paragraphs,
/// each table row apart, each on one line.
fn prose(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push(std::mem::take(&mut current));
            continue;
        }
        if fenced {
            continue;
        }
        if line.trim().is_empty() || line.trim_start().starts_with('|') {
            out.push(std::mem::take(&mut current));
        }
        current.push_str(line.trim());
        current.push(' ');
    }
    out.push(current);
    out.retain(|p| !p.trim().is_empty());
    out
}

/// The ```sh / ```bash / ```shell blocks of a Markdown text: (the line of
/// the fence, the block's lines).
fn shell_blocks(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, bool, Vec<String>)> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(lang)) => {
                let shell = matches!(lang.trim(), "sh" | "bash" | "shell" | "console");
                open = Some((i + 1, shell, Vec::new()));
            }
            (Some(_), Some(_)) => {
                let (at, shell, lines) = open.take().unwrap();
                if shell {
                    blocks.push((at, lines));
                }
            }
            (Some((_, _, lines)), None) => lines.push(line.trim().to_owned()),
            (None, None) => {}
        }
    }
    blocks
}

/// The commands of a shell block, each as its program and (for the tools
/// with verbs) its subcommand: `trailkeep create-trail`, `aws cloudtrail
/// lookup-events`, `scripts/local-run.sh`.
fn commands(block: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut continued = false;
    for line in block {
        let starts = !continued && !line.is_empty() && !line.starts_with('#');
        continued = line.ends_with('\\');
        if !starts {
            continue;
        }
        // Leading VAR=value assignments are not the program.
        let words: Vec<&str> = line
            .split_whitespace()
            .skip_while(|w| w.contains('=') && !w.starts_with('-'))
            .take_while(|w| !w.starts_with('#'))
            .collect();
        let Some(program) = words.first() else {
            continue;
        };
        let verbs = match *program {
            "aws" => 2,
            "trailkeep" | "trailkeep-dev" | "sam" | "cargo" => 1,
            _ => 0,
        };
        // Global options before the verbs, and the values of those that take one.
        let mut verb_words = Vec::new();
        let mut value_next = false;
        for w in &words[1..] {
            if verb_words.len() == verbs {
                break;
            }
            if std::mem::take(&mut value_next) {
                continue;
            }
            if w.starts_with('-') {
                value_next = !w.contains('=') && VALUED_OPTIONS.contains(w);
                continue;
            }
            verb_words.push(*w);
        }
        out.push(
            std::iter::once(*program)
                .chain(verb_words)
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    out
}

/// Global options of `aws`, `trailkeep`, `sam` and `cargo` that take a value.
const VALUED_OPTIONS: &[&str] = &[
    "--region",
    "--profile",
    "--endpoint-url",
    "--output",
    "--query",
    "--state-table",
    "--api-url",
    "--config-env",
    "--manifest-path",
];

#[test]
fn a_blocks_commands_are_its_programs_and_verbs() {
    let block: Vec<String> = [
        "# run by scripts/local-run.sh",
        "RUST_LOG=info trailkeep --region us-east-1 create-trail --name a \\",
        "  --s3-bucket-name b",
        "aws --region eu-west-1 cloudtrail lookup-events --max-results 5",
        "scripts/test.sh   # the suite",
    ]
    .map(str::to_owned)
    .to_vec();
    assert_eq!(
        commands(&block),
        [
            "trailkeep create-trail",
            "aws cloudtrail lookup-events",
            "scripts/test.sh"
        ]
    );
    let text = "x\n```sh\n# needs a real AWS account\nsam deploy\n```\n```json\n{}\n```\n";
    let blocks = shell_blocks(text);
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].0, 2);
    assert_eq!(blocks[0].1[1], "sam deploy");
}
