//! `ksplice-create`: build a rebootless update from a kernel tree and a patch.

use clap::{ArgAction, Parser};
use ksplice::create::{self, Options};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// Create a Ksplice update (ksplice-KID.tar.gz) for the kernel built from
/// KERNEL_SOURCE, from a patch.
///
/// Every option of the Perl ksplice-create is accepted (unambiguous
/// abbreviations too, and `--noOPTION` as `--no-OPTION`), with the same
/// meaning or refused with the reason.
#[derive(Debug, Parser)]
#[command(name = "ksplice-create", version, infer_long_args = true)]
struct Cli {
    /// The kernel source tree (configured, as the running kernel was built).
    #[arg(required_unless_present = "api_version")]
    kernel_source: Option<PathBuf>,
    /// The patch: a unified diff against the tree (applied with -p1).
    #[arg(long, value_name = "FILE")]
    patch: Option<PathBuf>,
    /// Files FOO<EXT> in the tree are the new versions of FOO.
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
    #[arg(long, hide = true)]
    no_series: bool,
    /// Also patch loadable modules.
    #[arg(long, overrides_with = "no_build_modules")]
    build_modules: bool,
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
    #[arg(long, hide = true)]
    no_short_name_hack: bool,
    /// Errors for programs: the first line of the error output is the
    /// abort code (OTHER), then the message; exit status 255.
    #[arg(long)]
    raw_errors: bool,
    /// Print the update format's API version and exit.
    #[arg(long)]
    api_version: bool,
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

fn main() -> ExitCode {
    let cli = Cli::parse_from(perl_style_args(std::env::args_os()));
    if cli.api_version {
        println!("{}", ksplice::package::API_VERSION);
        return ExitCode::SUCCESS;
    }
    ksplice::util::interrupt::install_handler();
    let opts = Options {
        tree: cli.kernel_source.unwrap_or_default(),
        patch: cli.patch,
        diffext: cli.diffext,
        git: cli.git,
        prebuild: cli.prebuild,
        skip_prebuild: cli.skip_prebuild,
        config: cli.config,
        id: cli.id,
        description: cli.description,
        jobs: cli.jobs,
        series: cli.series && !cli.no_series,
        build_modules: cli.build_modules && !cli.no_build_modules,
        only_targets: cli.only_targets,
        extra_match: cli.extra_match,
        exclude_match: cli.exclude_match,
        standalone: if cli.no_standalone {
            Some(false)
        } else if cli.standalone {
            Some(true)
        } else {
            None
        },
        patch_opt: cli.patch_opt,
        verbose: i32::from(cli.verbose) - i32::from(cli.quiet),
        short_name_hack: cli.short_name_hack && !cli.no_short_name_hack,
        allow_data_change: cli.allow_data_change,
        allow_layout_change: cli.allow_layout_change,
    };
    let code = match create::run(&opts) {
        Ok(c) => c,
        Err(e) if cli.raw_errors => create::report_raw_error(&e),
        Err(e) => create::report_error(&e),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The arguments as clap reads them, from the Perl tool's spellings:
/// `--noOPTION` is `--no-OPTION` (Getopt::Long's negation), and a `-j` or
/// `--jobs` not followed by a number is `--jobs=0` (no limit).
fn perl_style_args(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
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
