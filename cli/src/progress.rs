//! `validate-logs`' progress on stderr: log files checked of those the
//! digests walked so far list (the total grows as the walk goes on), the
//! inflated MB/s, elapsed and an estimate of what is left (of the files
//! listed so far: it runs low while the walk still finds digests).
//! indicatif draws only to a terminal: piped or redirected, stderr gets
//! nothing; with `--output json`, or with `RUST_LOG` set (log lines would
//! be drawn over), there is no bar at all. Lines printed while the bar is
//! up go through [`Progress::println`] and [`Progress::eprintln`], so they
//! are not drawn over.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trailkeep_shared::validate::{Finding, Kind};

pub struct Progress {
    bar: ProgressBar,
    bytes: u64,
    watch: Option<Arc<Watch>>,
}

/// The bar's counts for another task to read while the run goes on (the
/// console's validation page draws its own bar from them).
#[derive(Debug, Default)]
pub struct Watch {
    checked: AtomicU64,
    listed: AtomicU64,
}

impl Watch {
    /// (log files checked, log files listed so far).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.checked.load(Ordering::Relaxed),
            self.listed.load(Ordering::Relaxed),
        )
    }
}

impl Progress {
    /// A bar on stderr if `show` (and stderr is a terminal), else none.
    pub fn new(show: bool) -> Self {
        let target = if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        if show {
            // Elapsed time and the spinner move during slow GETs too.
            bar.enable_steady_tick(std::time::Duration::from_millis(250));
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {pos}/{len} log files checked, {msg}, {elapsed} (left ~{eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message("0 MB/s");
        Self {
            bar,
            bytes: 0,
            watch: None,
        }
    }

    /// Also counts into `watch`.
    pub fn watched(mut self, watch: Option<Arc<Watch>>) -> Self {
        self.watch = watch;
        self
    }

    /// Counts one verdict: a valid digest adds the log files it lists to the
    /// total, a log file checked adds one and its bytes.
    pub fn finding(&mut self, f: &Finding) {
        if let Some(w) = &self.watch {
            match f.kind {
                Kind::Digest => w.listed.fetch_add(f.listed as u64, Ordering::Relaxed),
                Kind::Log => w.checked.fetch_add(1, Ordering::Relaxed),
            };
        }
        match f.kind {
            Kind::Digest => self.bar.inc_length(f.listed as u64),
            Kind::Log => {
                self.bytes += f.bytes;
                self.bar.inc(1);
                let secs = self.bar.elapsed().as_secs_f64().max(0.001);
                self.bar
                    .set_message(format!("{:.0} MB/s", self.bytes as f64 / 1e6 / secs));
            }
        }
    }

    /// (log files checked, log files listed so far, bytes inflated).
    #[cfg(test)]
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.bar.position(),
            self.bar.length().unwrap_or(0),
            self.bytes,
        )
    }

    #[cfg(test)]
    pub fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }

    /// A line on stdout, with the bar out of the way.
    pub fn println(&self, line: &str) {
        self.bar.suspend(|| println!("{line}"));
    }

    /// A line on stderr, with the bar out of the way.
    pub fn eprintln(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Removes the bar before the report is printed.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(kind: Kind, bytes: u64, listed: usize) -> Finding {
        Finding {
            kind,
            location: "s3://b/k".into(),
            problem: None,
            bytes,
            listed,
            region: "eu-west-1".into(),
        }
    }

    #[test]
    fn the_total_grows_with_each_digest_and_log_files_count_with_their_bytes() {
        let mut p = Progress::new(false);
        p.finding(&finding(Kind::Digest, 0, 3));
        p.finding(&finding(Kind::Log, 1_000, 0));
        p.finding(&finding(Kind::Digest, 0, 2));
        p.finding(&finding(Kind::Log, 500, 0));
        assert_eq!(p.counts(), (2, 5, 1_500));
        p.finish();
        let watch = Arc::new(Watch::default());
        let mut p = Progress::new(false).watched(Some(watch.clone()));
        p.finding(&finding(Kind::Digest, 0, 4));
        p.finding(&finding(Kind::Log, 10, 0));
        assert_eq!(watch.counts(), (1, 4));
    }

    #[test]
    fn json_output_gets_no_bar_and_neither_does_a_stderr_that_is_not_a_terminal() {
        assert!(Progress::new(false).is_hidden());
        // Under `cargo test` stderr is captured, not a terminal.
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            assert!(Progress::new(true).is_hidden());
        }
    }
}
