//! The running kernel as the update tools see it: the update's directory
//! `/sys/kernel/ksplice/<kid>/` (`stage`, `abort_cause`, `conflicts`,
//! `debug`, `partial`), the loaded modules (`/sys/module`), and module
//! loading (`insmod`, `rmmod`).

use super::cli::DebugOpts;
use super::env::Env;
use super::ui::Ui;
use crate::package::names::{is_module_name, module_name};
use anyhow::{Context, Result, anyhow, bail};
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The stage of an update in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Loaded, not applied.
    Preparing,
    /// Matched with the running code, ready to apply.
    Prepared,
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
            "prepared" => Stage::Prepared,
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
            Stage::Prepared => write!(f, "prepared"),
            Stage::Applied => write!(f, "applied"),
            Stage::Reversed => write!(f, "reversed"),
            Stage::Other(s) => write!(f, "{s}"),
        }
    }
}

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
        Ok(self.read_raw_attr(kid, attr)?.trim().to_string())
    }

    /// Reads an attribute of the update as it is (bytes that are not UTF-8,
    /// such as in a task's name, replaced).
    fn read_raw_attr(&self, kid: &str, attr: &str) -> Result<String> {
        let p = self.update_dir(kid).join(attr);
        let mut buf = Vec::new();
        fs::File::open(&p)
            .and_then(|f| f.take(MAX_ATTR).read_to_end(&mut buf))
            .with_context(|| format!("{}: cannot read", p.display()))?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
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

    /// The update's `conflicts`, one `NAME PID SYMBOL...` line per task
    /// found running replaced code (empty when it cannot be read).
    pub fn conflicts(&self, kid: &str) -> String {
        self.read_raw_attr(kid, "conflicts").unwrap_or_default()
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
    /// labels module, its change modules (`ksplice_<kid>_*`, reverse
    /// sorted), then its core.
    pub fn update_modules(&self, kid: &str) -> Vec<String> {
        let mut m = self.modules_matching(&format!("ksplice_{kid}_"), "");
        m.reverse();
        // The labels modules first: they hold the new code modules.
        m.sort_by_key(|x| !x.ends_with("_labels"));
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

    /// Reports why the kernel refused an operation on `kid`: `headline`, the
    /// abort cause with `explain`'s text for it (and the busy tasks for
    /// `code_busy`), then the debug trace if `debug` wants it.
    pub fn report_abort(
        &self,
        kid: &str,
        headline: &str,
        explain: fn(&str) -> &'static str,
        debug: &DebugOpts,
    ) {
        let cause = self.abort_cause(kid);
        self.ui
            .abort(headline, &cause, explain(&cause), &self.conflicts(kid));
        if debug.wanted() {
            self.save_debug(kid, debug.debugfile.as_deref());
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::testkit::{FakeKernel, KID, quiet_ui};

    #[test]
    fn conflicts_are_read_as_they_are() {
        let fake = FakeKernel::new("applied", "ok", "");
        fake.install("applied");
        let k = Kernel {
            env: fake.env(),
            ui: quiet_ui("ksplice-apply"),
        };
        let p = k.update_dir(KID).join("conflicts");
        fs::write(&p, b"w\xffx 5 f g\n").unwrap();
        assert_eq!(k.conflicts(KID), "w\u{fffd}x 5 f g\n");
        fs::remove_file(&p).unwrap();
        assert_eq!(k.conflicts(KID), "");
        assert_eq!(k.stage(KID).unwrap(), Some(Stage::Applied));
        assert_eq!(k.stage("a/b").unwrap(), None);
    }
}
