//! The command line of ksplice-create: its options ([`CreateCli`]), read
//! after the Perl tool's spellings are rewritten ([`perl_style_args`]), and
//! the [`Options`] of a run.

use super::exit;
use crate::create::Options;
use clap::{ArgAction, Parser};
use std::ffi::OsString;
use std::path::PathBuf;

/// Create a Ksplice update (ksplice-KID.tar.gz) for the kernel built from
/// KERNEL_SOURCE, from a patch.
///
/// Every option of the Perl ksplice-create is accepted (unambiguous
/// abbreviations too, and `--noOPTION` as `--no-OPTION`), with the same
/// meaning or refused with the reason.
#[derive(Debug, Parser)]
#[command(
    name = "ksplice-create",
    version,
    infer_long_args = true,
    after_help = exit::CREATE.help()
)]
pub struct CreateCli {
    /// The kernel source tree (configured, as the running kernel was built).
    #[arg(required_unless_present = "api_version")]
    kernel_source: Option<PathBuf>,
    /// The patch: a unified diff against the tree (applied with -p1).
    #[arg(long, value_name = "FILE")]
    patch: Option<PathBuf>,
    /// Files FOO<EXT> in the tree are the new versions of FOO.
    #[allow(rustdoc::invalid_html_tags)] // the text is also the --help line
    #[arg(long, value_name = "EXT")]
    diffext: Option<String>,
    /// The changes from the tree's HEAD to REV (a git tree).
    #[arg(long, value_name = "REV")]
    git: Option<String>,
    /// Only do the snap build, to make later runs fast.
    #[arg(long)]
    prebuild: bool,
    /// The snap build was already done (--prebuild).
    #[arg(long)]
    skip_prebuild: bool,
    /// Directory with the running kernel's System.map (required), .config,
    /// build (the O= directory) and flags (extra make arguments).
    /// Default: KERNEL_SOURCE/ksplice.
    #[arg(long, value_name = "DIR")]
    config: Option<PathBuf>,
    /// The update id (default: 8 random characters).
    #[arg(long, value_name = "KID")]
    id: Option<String>,
    /// A description shown by ksplice-view.
    #[arg(long)]
    description: Option<String>,
    /// Parallel build jobs; -j alone (or 0): no limit, as make's -j.
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,
    /// Keep this patch as the base of the next update (freeze instead of revert).
    #[arg(long, overrides_with = "no_series")]
    series: bool,
    /// `--no-series`, `--noseries`: the default.
    #[arg(long, hide = true)]
    no_series: bool,
    /// Also patch loadable modules.
    #[arg(long, overrides_with = "no_build_modules")]
    build_modules: bool,
    /// `--no-build-modules`, `--nobuild-modules`: the default.
    #[arg(long, hide = true)]
    no_build_modules: bool,
    /// Only these targets (vmlinux or module names; make patterns).
    #[arg(long, value_name = "PATTERN")]
    only_targets: Vec<String>,
    /// Objects whose old code is always included for matching.
    #[arg(long, value_name = "PATTERN")]
    extra_match: Vec<String>,
    /// Objects never included by --extra-match.
    #[arg(long, value_name = "PATTERN")]
    exclude_match: Vec<String>,
    /// Build the core module into the update (the default: mainline Linux has no integrated Ksplice).
    #[arg(long, overrides_with = "no_standalone")]
    standalone: bool,
    /// Use a kernel with integrated Ksplice (refused: mainline Linux has none).
    #[arg(long)]
    no_standalone: bool,
    /// Shorter module names (refused: the update's modules are named
    /// ksplice-KID_TARGET-new and -old, as ksplice-apply expects).
    #[arg(long, overrides_with = "no_short_name_hack")]
    short_name_hack: bool,
    /// `--no-short-name-hack`, `--noshort-name-hack`: the default.
    #[arg(long, hide = true)]
    no_short_name_hack: bool,
    /// Errors for programs: the first line of the error output is the
    /// abort code (OTHER), then the message; exit status 255.
    #[arg(long)]
    pub raw_errors: bool,
    /// Print the update format's API version and exit.
    #[arg(long)]
    pub api_version: bool,
    /// Print the help (as -h).
    #[arg(short = '?', action = ArgAction::Help, hide = true)]
    question_help: Option<bool>,
    /// An option for patch(1) (default -p1); repeatable.
    #[arg(long, value_name = "OPT", allow_hyphen_values = true)]
    patch_opt: Vec<String>,
    /// More output (repeat for debugging output).
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
    /// Less output (repeat for less).
    #[arg(short, long, action = ArgAction::Count)]
    quiet: u8,
    /// Ignore changes to writable data instead of refusing the patch.
    #[arg(long)]
    allow_data_change: bool,
    /// Warn about changed struct and union layouts instead of refusing the
    /// patch (existing objects keep the old layout).
    #[arg(long)]
    allow_layout_change: bool,
}

impl CreateCli {
    /// The command line of the process, with the Perl tool's spellings.
    pub fn parse_perl_style() -> CreateCli {
        CreateCli::parse_from(perl_style_args(std::env::args_os()))
    }

    /// The run the options ask for.
    pub fn options(self) -> Options {
        Options {
            tree: self.kernel_source.unwrap_or_default(),
            patch: self.patch,
            diffext: self.diffext,
            git: self.git,
            prebuild: self.prebuild,
            skip_prebuild: self.skip_prebuild,
            config: self.config,
            id: self.id,
            description: self.description,
            jobs: self.jobs,
            series: self.series && !self.no_series,
            build_modules: self.build_modules && !self.no_build_modules,
            only_targets: self.only_targets,
            extra_match: self.extra_match,
            exclude_match: self.exclude_match,
            standalone: if self.no_standalone {
                Some(false)
            } else if self.standalone {
                Some(true)
            } else {
                None
            },
            patch_opt: self.patch_opt,
            verbose: i32::from(self.verbose) - i32::from(self.quiet),
            short_name_hack: self.short_name_hack && !self.no_short_name_hack,
            allow_data_change: self.allow_data_change,
            allow_layout_change: self.allow_layout_change,
        }
    }
}

/// The arguments as clap reads them, from the Perl tool's spellings:
/// `--noOPTION` is `--no-OPTION` (Getopt::Long's negation), and a `-j` or
/// `--jobs` not followed by a number is `--jobs=0` (no limit).
pub fn perl_style_args(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let args: Vec<OsString> = args.collect();
    let mut out = Vec::with_capacity(args.len());
    let mut end_of_options = false;
    for (i, a) in args.iter().enumerate() {
        let Some(s) = a.to_str().filter(|_| !end_of_options && i > 0) else {
            out.push(a.clone());
            continue;
        };
        let next_is_number = args
            .get(i + 1)
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        match s {
            "--" => {
                end_of_options = true;
                out.push(a.clone());
            }
            "-j" | "--jobs" if !next_is_number => out.push("--jobs=0".into()),
            _ => match s.strip_prefix("--no").filter(|r| NEGATABLE.contains(r)) {
                Some(rest) => out.push(format!("--no-{rest}").into()),
                None => out.push(a.clone()),
            },
        }
    }
    out
}

/// The options of the Perl tool with a `--noOPTION` form.
const NEGATABLE: &[&str] = &["series", "build-modules", "standalone", "short-name-hack"];
