//! `ksplice-create`: build a rebootless update from a kernel tree and a patch.

use clap::{ArgAction, Parser};
use ksplice::create::{self, Options};
use std::path::PathBuf;
use std::process::ExitCode;

/// Create a Ksplice update (ksplice-KID.tar.gz) for the kernel built from
/// KERNEL_SOURCE, from a patch.
#[derive(Debug, Parser)]
#[command(name = "ksplice-create", version)]
struct Cli {
    /// The kernel source tree (configured, as the running kernel was built).
    kernel_source: PathBuf,
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
    /// Parallel build jobs.
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
    /// Build the core module into the update (the default on Linux 6.1).
    #[arg(long, overrides_with = "no_standalone")]
    standalone: bool,
    /// Use a kernel with integrated Ksplice (not available on Linux 6.1).
    #[arg(long)]
    no_standalone: bool,
    /// An option for patch(1) (default -p1); repeatable.
    #[arg(long, value_name = "OPT", allow_hyphen_values = true)]
    patch_opt: Vec<String>,
    /// More output (repeat for debugging output).
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
    /// Less output.
    #[arg(short, long)]
    quiet: bool,
    /// Ignore changes to writable data instead of refusing the patch.
    #[arg(long)]
    allow_data_change: bool,
    /// Warn about changed struct and union layouts instead of refusing the
    /// patch (existing objects keep the old layout).
    #[arg(long)]
    allow_layout_change: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ksplice::util::interrupt::install_handler();
    let opts = Options {
        tree: cli.kernel_source,
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
        verbose: if cli.quiet {
            -1
        } else {
            i32::from(cli.verbose)
        },
        allow_data_change: cli.allow_data_change,
        allow_layout_change: cli.allow_layout_change,
    };
    let code = match create::run(&opts) {
        Ok(c) => c,
        Err(e) => create::report_error(&e),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
