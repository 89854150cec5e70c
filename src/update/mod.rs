//! An update package and the running kernel, as ksplice-apply, ksplice-undo
//! and ksplice-view see them.
//!
//! - [`Update`]: an update opened from its tarball (unpacked privately, see
//!   [`crate::package::tarball`]) or from an unpacked tree; `contents` and `utsname`
//!   are parsed and checked ([`Contents`], [`Utsname`], typed
//!   [`UpdateError`]s).
//! - [`Env`]: where the kernel is (`/sys`, `/proc`) and how modules are
//!   loaded (`insmod`, `rmmod`), each overridable from the environment so
//!   tests can fake the kernel: `KSPLICE_SYSFS`, `KSPLICE_PROC`,
//!   `KSPLICE_INSMOD`, `KSPLICE_RMMOD`, and `KSPLICE_STATE` for the records.
//! - [`Kernel`]: the update's directory `/sys/kernel/ksplice/<kid>/` (`stage`,
//!   `abort_cause`, `conflicts`, `debug`, `partial`) and module loading.
//! - [`Record`]: what ksplice-apply keeps about an applied update
//!   (`$KSPLICE_STATE/<kid>/`: description, patched functions, contents,
//!   patch), read by ksplice-view and ksplice-undo.
//! - [`Ui`]: the tools' common output conventions (progress, `-v` command
//!   echo, `--raw-errors`), abort-cause explanations, exit statuses and the
//!   shared `main` ([`tool_main`]),
//!   whose termination signals go through [`crate::util::interrupt`].

use crate::package::names::{is_module_name, module_name};
use crate::package::patched::parse_patched;
use crate::package::{Contents, Update};
use crate::util::interrupt::{self, Interrupted};
use anyhow::{Context, Result, anyhow, bail};
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: an error; the kernel is as it was.
pub const EXIT_ERROR: u8 = 1;
/// Exit status: the kernel refused the operation (its abort cause is printed).
pub const EXIT_ABORTED: u8 = 2;
/// Exit status: interrupted by a signal; what was loaded is unloaded.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Where the tools find the kernel, their commands and their records.
#[derive(Debug, Clone)]
pub struct Env {
    /// The sysfs root (`KSPLICE_SYSFS`, default `/sys`).
    pub sysfs: PathBuf,
    /// The procfs root (`KSPLICE_PROC`, default `/proc`).
    pub proc_root: PathBuf,
    /// The records of applied updates (`KSPLICE_STATE`, default `/var/run/ksplice`).
    pub state: PathBuf,
    /// The module loader and its leading arguments (`KSPLICE_INSMOD`, default `insmod`).
    pub insmod: Vec<String>,
    /// The module unloader (`KSPLICE_RMMOD`, default `rmmod`).
    pub rmmod: Vec<String>,
}

impl Env {
    /// The defaults, overridden by the environment variables.
    pub fn from_env() -> Result<Env> {
        let path = |var: &str, default: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(default))
        };
        let cmd = |var: &str, default: &str| -> Result<Vec<String>> {
            match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => {
                    let w =
                        crate::util::fsutil::shell_words(&v).with_context(|| format!("${var}"))?;
                    if w.is_empty() {
                        bail!("${var} names no command");
                    }
                    Ok(w)
                }
                _ => Ok(vec![default.to_string()]),
            }
        };
        Ok(Env {
            sysfs: path("KSPLICE_SYSFS", "/sys"),
            proc_root: path("KSPLICE_PROC", "/proc"),
            state: path("KSPLICE_STATE", "/var/run/ksplice"),
            insmod: cmd("KSPLICE_INSMOD", "insmod")?,
            rmmod: cmd("KSPLICE_RMMOD", "rmmod")?,
        })
    }
}

/// The stage of an update in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Loaded, not applied.
    Preparing,
    /// Applied.
    Applied,
    /// Applied, then reversed.
    Reversed,
    /// Something these tools do not know.
    Other(String),
}

impl Stage {
    fn parse(s: &str) -> Stage {
        match s {
            "preparing" => Stage::Preparing,
            "applied" => Stage::Applied,
            "reversed" => Stage::Reversed,
            o => Stage::Other(o.to_string()),
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Preparing => write!(f, "preparing"),
            Stage::Applied => write!(f, "applied"),
            Stage::Reversed => write!(f, "reversed"),
            Stage::Other(s) => write!(f, "{s}"),
        }
    }
}

/// Output conventions shared by the tools.
#[derive(Debug, Clone)]
pub struct Ui {
    /// The tool's name, for messages.
    pub tool: &'static str,
    /// `-v` minus `-q`.
    pub verbose: i32,
    /// `--raw-errors`: machine-readable errors on stderr.
    pub raw_errors: bool,
}

impl Ui {
    /// A progress line on stdout (not with `-q`).
    pub fn progress(&self, msg: &str) {
        if self.verbose >= 0 {
            println!("{msg}");
        }
    }

    /// Prints an error: `TOOL: message` (`OTHER` and the message with `--raw-errors`).
    pub fn error(&self, e: &anyhow::Error) {
        let msg = format!("{e:#}");
        if self.raw_errors {
            eprintln!("OTHER\n{msg}");
        } else {
            eprintln!("{}: {msg}", self.tool);
        }
    }

    /// Prints a warning (not with `--raw-errors`, which keeps stderr for errors).
    pub fn warn(&self, msg: &str) {
        if !self.raw_errors {
            eprintln!("{}: warning: {msg}", self.tool);
        }
    }

    /// Prints the kernel's abort cause: the code with `--raw-errors`, else
    /// `headline` and the explanation; the processes using changed code for
    /// `code_busy`.
    pub fn abort(&self, headline: &str, cause: &str, explanation: &str, conflicts: &str) {
        if self.raw_errors {
            eprintln!("{cause}");
            if cause == "code_busy" {
                eprint!("{conflicts}");
            }
            return;
        }
        eprintln!("{}: {headline}:\n{explanation}", self.tool);
        if cause == "code_busy" {
            eprint!("{}", describe_conflicts(conflicts));
        }
    }
}

/// The `conflicts` attribute (`NAME PID SYMBOL...` per line) in words.
pub fn describe_conflicts(raw: &str) -> String {
    let mut out = String::new();
    for l in raw.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 3 {
            continue;
        }
        out.push_str(&format!(
            "Process {} (pid {}) is using code the update changes:\n",
            w[0], w[1]
        ));
        for s in &w[2..] {
            out.push_str(&format!("  {s}\n"));
        }
    }
    out
}

/// What the kernel's abort cause means when applying an update.
pub fn explain_apply(cause: &str) -> &'static str {
    match cause {
        "no_match" => {
            "The running kernel's code does not match the code the update was built against: \
             the update must be built from the exact source, configuration and compiler of the running kernel."
        }
        "code_busy" => {
            "A function the update replaces was always in use (on some thread's stack) \
             when Ksplice tried to switch to the new code; try again later."
        }
        "bad_system_map" => {
            "The System.map given to ksplice-create does not belong to the running kernel."
        }
        "failed_to_find" => "A symbol the update needs could not be found in the running kernel.",
        "already_reversed" => {
            "This update was already applied and reversed; unload its modules before applying it again."
        }
        "missing_export" => {
            "A symbol the update expects the kernel to export is not exported by the running kernel."
        }
        "unexpected_running_task" => {
            "The check of the threads' stacks failed unexpectedly; this is a bug in Ksplice."
        }
        "target_not_loaded" => {
            "A module the update changes is not loaded; use --partial to apply the update to the loaded code only."
        }
        "out_of_memory" => "The kernel ran out of memory.",
        "call_failed" => {
            "A hook of the update refused the application (likely a bug in the patch)."
        }
        "unexpected" => "The kernel's Ksplice core failed unexpectedly; this is a bug in Ksplice.",
        "ok" => {
            "The update was not applied, for no reason the kernel reported; this is a bug in Ksplice."
        }
        _ => "The kernel reported an abort cause this version of ksplice-apply does not know.",
    }
}

/// What the kernel's abort cause means when reversing an update.
pub fn explain_undo(cause: &str) -> &'static str {
    match cause {
        "code_busy" => {
            "A function the update changed was always in use (on some thread's stack) \
             when Ksplice tried to switch back to the old code; try again later."
        }
        "module_busy" => "The update's modules are in use by another module (see lsmod).",
        "unexpected_running_task" => {
            "The check of the threads' stacks failed unexpectedly; this is a bug in Ksplice."
        }
        "out_of_memory" => "The kernel ran out of memory.",
        "call_failed" => "A hook of the update refused the reversal (likely a bug in the patch).",
        "cold_update_loaded" => {
            "The update was applied with --partial and a module it changes was loaded since; \
             unload that module before undoing the update."
        }
        "already_reversed" => "The update is already reversed.",
        "unexpected" => "The kernel's Ksplice core failed unexpectedly; this is a bug in Ksplice.",
        "ok" => {
            "The update was not reversed, for no reason the kernel reported; this is a bug in Ksplice."
        }
        _ => "The kernel reported an abort cause this version of ksplice-undo does not know.",
    }
}

/// Parses the command line: `Err(status)` after printing help or version
/// (status 0) or a usage error (status 1, as the original tools).
fn parse_args<T: clap::Parser>() -> Result<T, u8> {
    match T::try_parse() {
        Ok(c) => Ok(c),
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                Err(EXIT_OK)
            } else {
                Err(EXIT_ERROR)
            }
        }
    }
}

/// The options ksplice-apply, ksplice-undo and ksplice-view share, placed
/// last in each tool's options (`#[command(flatten)]`). ksplice-view words
/// `--raw-errors`, `-v` and `-q` for itself with `mut_arg`.
#[derive(Debug, clap::Args)]
pub struct CommonOpts {
    /// Machine-readable errors on stderr: the kernel's abort code as the
    /// first line, or OTHER and a message.
    #[arg(long)]
    pub raw_errors: bool,
    /// Print the version of the update format this tool reads.
    #[arg(long)]
    pub api_version: bool,
    /// Show the commands run (repeatable).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress messages.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,
}

/// `--debug` and `--debugfile` of ksplice-apply and ksplice-undo.
#[derive(Debug, clap::Args)]
pub struct DebugOpts {
    /// On failure, print the kernel's debugging output.
    #[arg(long)]
    pub debug: bool,
    /// On failure, save the kernel's debugging output to FILE (implies
    /// --debug).
    #[arg(long, value_name = "FILE")]
    pub debugfile: Option<PathBuf>,
}

impl DebugOpts {
    /// Whether the kernel's debugging output is wanted on failure.
    pub fn wanted(&self) -> bool {
        self.debug || self.debugfile.is_some()
    }
}

/// The `main` of an update tool: parses the command line (`common` gives
/// its [`CommonOpts`]), answers `--api-version`, then runs `run` and maps
/// its result to the exit status
/// (an error prints `TOOL: message` and exits 1). With `on_interrupt`, a
/// termination signal sets the interrupt flag instead of killing the tool,
/// and a run that ends with [`Interrupted`] prints "interrupted;
/// `on_interrupt`" and exits 130.
pub fn tool_main<C: clap::Parser>(
    tool: &'static str,
    common: fn(&C) -> &CommonOpts,
    on_interrupt: Option<&str>,
    run: fn(&C, &Ui) -> Result<u8>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let cli = match parse_args::<C>() {
        Ok(c) => c,
        Err(code) => return ExitCode::from(code),
    };
    let opts = common(&cli);
    if opts.api_version {
        println!("{}", crate::package::API_VERSION);
        return ExitCode::SUCCESS;
    }
    let ui = Ui {
        tool,
        verbose: i32::from(opts.verbose) - i32::from(opts.quiet),
        raw_errors: opts.raw_errors,
    };
    if on_interrupt.is_some() {
        interrupt::install_handler();
    }
    let code = match run(&cli, &ui) {
        Ok(c) => c,
        Err(e) => match on_interrupt.filter(|_| e.downcast_ref::<Interrupted>().is_some()) {
            Some(what) => {
                ui.error(&anyhow!("interrupted; {what}"));
                EXIT_INTERRUPTED
            }
            None => {
                ui.error(&e);
                EXIT_ERROR
            }
        },
    };
    ExitCode::from(code)
}

/// The exit statuses of ksplice-apply, for `--help`.
pub const EXIT_STATUS_HELP: &str = "Exit status:
  0    applied (or already applied)
  1    error (bad update, wrong kernel, a module failed to load, bad usage);
       the modules loaded so far are unloaded
  2    the kernel refused the update (the reason is printed); its modules
       are unloaded
  130  interrupted; the modules loaded so far are unloaded

Environment (for testing): KSPLICE_SYSFS (/sys), KSPLICE_PROC (/proc),
KSPLICE_STATE (/var/run/ksplice), KSPLICE_INSMOD (insmod), KSPLICE_RMMOD (rmmod).";

/// The exit statuses of ksplice-undo, for `--help`.
pub const UNDO_EXIT_STATUS_HELP: &str = "Exit status:
  0    reversed and unloaded
  1    error (not applied, not present, a module could not be unloaded,
       bad usage)
  2    the kernel refused to reverse the update (the reason is printed);
       it stays applied
  130  interrupted before reversing; nothing changed (once the reversal
       has started, a signal waits for the modules to be unloaded)

Environment (for testing): KSPLICE_SYSFS (/sys), KSPLICE_STATE
(/var/run/ksplice), KSPLICE_RMMOD (rmmod).";

/// The running kernel: the Ksplice sysfs directories and module loading.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// Where things are.
    pub env: Env,
    /// How to talk.
    pub ui: Ui,
}

/// The largest attribute read (sysfs attributes are at most a page).
const MAX_ATTR: u64 = 1 << 16;

impl Kernel {
    /// `/sys/kernel/ksplice`.
    pub fn updates_dir(&self) -> PathBuf {
        self.env.sysfs.join("kernel/ksplice")
    }

    /// `/sys/kernel/ksplice/<kid>`.
    pub fn update_dir(&self, kid: &str) -> PathBuf {
        self.updates_dir().join(kid)
    }

    /// True when the update `kid` is registered with the kernel (never for
    /// a `kid` that is not a module name, such as a path).
    pub fn update_present(&self, kid: &str) -> bool {
        is_module_name(kid) && self.update_dir(kid).is_dir()
    }

    /// Reads an attribute of the update (whitespace trimmed).
    pub fn read_attr(&self, kid: &str, attr: &str) -> Result<String> {
        let p = self.update_dir(kid).join(attr);
        let mut buf = Vec::new();
        fs::File::open(&p)
            .and_then(|f| f.take(MAX_ATTR).read_to_end(&mut buf))
            .with_context(|| format!("{}: cannot read", p.display()))?;
        Ok(String::from_utf8_lossy(&buf).trim().to_string())
    }

    /// Writes `word` to an attribute of the update. The file is opened
    /// write-only, never created or truncated, and the word is written in
    /// one `write` without a newline, as sysfs expects.
    pub fn write_attr(&self, kid: &str, attr: &str, word: &str) -> std::io::Result<()> {
        let p = self.update_dir(kid).join(attr);
        if self.ui.verbose >= 1 {
            println!("+ echo {word} > {}", p.display());
        }
        let mut f = fs::OpenOptions::new().write(true).open(&p)?;
        f.write_all(word.as_bytes())
    }

    /// The update's stage, `None` when the update is not in the kernel.
    pub fn stage(&self, kid: &str) -> Result<Option<Stage>> {
        if !self.update_present(kid) {
            return Ok(None);
        }
        Ok(Some(Stage::parse(&self.read_attr(kid, "stage")?)))
    }

    /// The update's abort cause (`unexpected` when it cannot be read).
    pub fn abort_cause(&self, kid: &str) -> String {
        self.read_attr(kid, "abort_cause")
            .ok()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "unexpected".to_string())
    }

    /// The update's `conflicts` (empty when it cannot be read).
    pub fn conflicts(&self, kid: &str) -> String {
        let p = self.update_dir(kid).join("conflicts");
        fs::read_to_string(p).unwrap_or_default()
    }

    /// The updates the kernel knows, sorted.
    pub fn updates(&self) -> Result<Vec<String>> {
        let dir = self.updates_dir();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot list", dir.display())),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.with_context(|| format!("{}: cannot list", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() && is_module_name(&name) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// True when module `name` is loaded (`/sys/module/<name>` exists).
    pub fn module_loaded(&self, name: &str) -> bool {
        self.env
            .sysfs
            .join("module")
            .join(module_name(name))
            .is_dir()
    }

    /// Loaded modules whose names start with `prefix` and end with `suffix`, sorted.
    pub fn modules_matching(&self, prefix: &str, suffix: &str) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(self.env.sysfs.join("module"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix) && n.ends_with(suffix) && n.len() > prefix.len())
            .collect();
        out.sort();
        out
    }

    /// The loaded modules of update `kid`, in the order to unload them: its
    /// change modules (`ksplice_<kid>_*`, reverse sorted), then its core.
    pub fn update_modules(&self, kid: &str) -> Vec<String> {
        let mut m = self.modules_matching(&format!("ksplice_{kid}_"), "");
        m.reverse();
        let core = format!("ksplice_{kid}");
        if self.module_loaded(&core) {
            m.push(core);
        }
        m
    }

    /// The module's reference count, when the kernel shows it.
    pub fn module_refcount(&self, name: &str) -> Option<u64> {
        let p = self.env.sysfs.join("module").join(name).join("refcnt");
        fs::read_to_string(p).ok()?.trim().parse().ok()
    }

    fn run(&self, cmd: &[String], arg: &str) -> Result<()> {
        let (prog, args) = cmd
            .split_first()
            .ok_or_else(|| anyhow!("no command configured"))?;
        if self.ui.verbose >= 1 {
            println!("+ {} {arg}", cmd.join(" "));
        }
        // Nothing here opens /dev/null: an initramfs may have no /dev.
        let mut c = Command::new(prog);
        c.args(args).arg(arg);
        let st = if self.ui.raw_errors {
            // stderr is kept for the machine-readable lines: the command's
            // complaints are captured and dropped.
            c.stdout(Stdio::inherit()).stderr(Stdio::piped());
            c.output().map(|o| o.status)
        } else {
            c.status()
        }
        .with_context(|| format!("cannot run {prog}"))?;
        if st.success() {
            return Ok(());
        }
        use std::os::unix::process::ExitStatusExt;
        let line = format!("{} {arg}", cmd.join(" "));
        match (st.code(), st.signal()) {
            (Some(code), _) => bail!("{line} failed (exit status {code})"),
            (None, Some(sig)) => bail!("{line} was killed by signal {sig}"),
            _ => bail!("{line} failed"),
        }
    }

    /// Loads a module file.
    pub fn insmod(&self, file: &Path) -> Result<()> {
        self.run(&self.env.insmod, &file.to_string_lossy())
    }

    /// Unloads a module by name.
    pub fn rmmod(&self, name: &str) -> Result<()> {
        self.run(&self.env.rmmod, name)
    }

    /// The update's `debug` trace, copied to `file` (its path is printed) or
    /// printed; failures are warnings.
    pub fn save_debug(&self, kid: &str, file: Option<&Path>) {
        let p = self.update_dir(kid).join("debug");
        let text = match fs::read(&p) {
            Ok(t) => t,
            Err(e) => {
                self.ui.warn(&format!(
                    "{}: cannot read the debugging output: {e}",
                    p.display()
                ));
                return;
            }
        };
        match file {
            Some(f) => match fs::write(f, &text) {
                Ok(()) => println!("Debugging output saved to {}", f.display()),
                Err(e) => self.ui.warn(&format!("{}: cannot write: {e}", f.display())),
            },
            None => {
                println!("Debugging output of update {kid}:");
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&text);
                if !text.ends_with(b"\n") {
                    let _ = out.write_all(b"\n");
                }
            }
        }
    }
}

/// What ksplice-apply keeps about an applied update, in `STATE/<kid>/`.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// The update's description.
    pub description: Option<String>,
    /// The functions it changes.
    pub patched: Option<Vec<(String, String)>>,
    /// Its modules (when `contents` is recorded and readable).
    pub contents: Option<Contents>,
    /// The source patch.
    pub patch: Option<String>,
}

/// The files of an update a record keeps.
const RECORDED: &[&str] = &["description", "patched", "contents", "patch"];

impl Record {
    /// The record directory of `kid`.
    pub fn dir(state: &Path, kid: &str) -> PathBuf {
        state.join(kid)
    }

    /// Records `update` as applied (replacing an older record).
    pub fn save(state: &Path, update: &Update) -> Result<()> {
        let dir = Self::dir(state, &update.kid);
        let tmp = state.join(format!(".{}.tmp", update.kid));
        let res = (|| -> Result<()> {
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir_all(&tmp)?;
            for f in RECORDED {
                let src = update.file(f);
                if src.is_file() {
                    fs::copy(&src, tmp.join(f))?;
                }
            }
            if dir.exists() {
                fs::remove_dir_all(&dir)?;
            }
            fs::rename(&tmp, &dir)?;
            Ok(())
        })();
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        res.with_context(|| format!("{}: cannot record the update", dir.display()))
    }

    /// The record of `kid`, `None` when there is none.
    pub fn load(state: &Path, kid: &str) -> Option<Record> {
        let dir = Self::dir(state, kid);
        if !dir.is_dir() {
            return None;
        }
        let read = |f: &str| fs::read_to_string(dir.join(f)).ok();
        Some(Record {
            description: read("description"),
            patched: read("patched").map(|t| parse_patched(&t)),
            contents: read("contents").and_then(|t| Contents::parse(&t, kid).ok()),
            patch: read("patch"),
        })
    }

    /// Removes the record of `kid`, if any.
    pub fn remove(state: &Path, kid: &str) -> Result<()> {
        let dir = Self::dir(state, kid);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("{}: cannot remove", dir.display())),
        }
    }
}

/// The first line of a description, or the text ksplice-view shows without one.
pub fn short_description(d: Option<&str>) -> String {
    d.and_then(|d| d.lines().find(|l| !l.trim().is_empty()))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "no description available".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanations_cover_every_cause() {
        for c in [
            "no_match",
            "code_busy",
            "bad_system_map",
            "failed_to_find",
            "already_reversed",
            "missing_export",
            "unexpected_running_task",
            "target_not_loaded",
            "out_of_memory",
            "call_failed",
            "unexpected",
            "ok",
        ] {
            assert_ne!(explain_apply(c), explain_apply("no_such_cause"), "{c}");
        }
        assert!(explain_apply("target_not_loaded").contains("--partial"));
        assert_ne!(explain_undo("code_busy"), explain_undo("no_such_cause"));
        assert!(describe_conflicts("bash 42 do_sys other\nidle 0\n").contains("bash (pid 42)"));
    }
}
