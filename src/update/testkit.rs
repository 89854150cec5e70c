//! A fake kernel for the flows' unit tests: a scratch directory holding
//! `sys/`, `proc/` and the records, with `insmod` and `rmmod` shell scripts
//! that log what they do and create or remove `sys/module/NAME` (loading an
//! old-code module registers the update, as the real core does, with the
//! `stage`, `abort_cause` and `conflicts` the test wrote to
//! `init/`). The stage is a regular file: whatever a flow writes over
//! `preparing\n` or `applied\n` leaves it neither applied nor reversed, so
//! the kernel refuses every operation. (tests/tools.rs plays the kernel's
//! side of `stage` with a FIFO; in a multi-threaded test process, FIFOs
//! are not reliable: a child forked by another test may hold a copy of an
//! end.) The steps after a successful stage change are tested by calling
//! them directly.

use super::env::Env;
use super::ui::Ui;
use crate::package::Contents;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const KID: &str = "abc";
const RELEASE: &str = "6.1.0-ksplice-unit";
const VERSION: &str = "#1 SMP";

const INSMOD: &str = r#"f=$1
name=$(basename "$f" .ko | tr - _)
echo "insmod $name" >> "$D/log"
case " $(cat "$D/init/fail") " in *" $name "*) exit 1 ;; esac
mkdir -p "$D/sys/module/$name"
case $name in
*_old)
    u=$D/sys/kernel/ksplice/abc
    if [ ! -d "$u" ]; then
        mkdir -p "$u"
        cp "$D/init/abort_cause" "$D/init/conflicts" "$u/"
        cp "$D/init/stage" "$u/"
        echo "debug trace" > "$u/debug"
        echo 0 > "$u/partial"
    fi ;;
esac
"#;

const RMMOD: &str = r#"echo "rmmod $1" >> "$D/log"
rm -rf "$D/sys/module/$1"
if [ "$1" = ksplice_abc ]; then rm -rf "$D/sys/kernel/ksplice/abc"; fi
"#;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory with a fake kernel and an unpacked update.
pub struct FakeKernel {
    pub dir: PathBuf,
}

impl FakeKernel {
    /// A fake kernel whose update will start in `stage`, and abort (if it
    /// does) with `cause` and `conflicts`.
    pub fn new(stage: &str, cause: &str, conflicts: &str) -> FakeKernel {
        let dir = std::env::temp_dir().join(format!(
            "ksplice-unit-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        for d in [
            "sys/module",
            "sys/kernel/ksplice",
            "proc/sys/kernel",
            "state",
            "init",
        ] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        let w = |p: &str, t: &str| fs::write(dir.join(p), t).unwrap();
        w("proc/sys/kernel/osrelease", &format!("{RELEASE}\n"));
        w("proc/sys/kernel/version", &format!("{VERSION}\n"));
        w("init/stage", &format!("{stage}\n"));
        w("init/abort_cause", &format!("{cause}\n"));
        w("init/conflicts", conflicts);
        w("init/fail", "");
        w("log", "");
        w("insmod.sh", &format!("D='{}'\n{INSMOD}", dir.display()));
        w("rmmod.sh", &format!("D='{}'\n{RMMOD}", dir.display()));
        FakeKernel { dir }
    }

    /// The environment pointing at the fake kernel.
    pub fn env(&self) -> Env {
        let p = |s: &str| self.dir.join(s);
        let sh = |s: &str| vec!["sh".to_string(), p(s).display().to_string()];
        Env {
            sysfs: p("sys"),
            proc_root: p("proc"),
            state: p("state"),
            lib: p("lib"),
            insmod: sh("insmod.sh"),
            rmmod: sh("rmmod.sh"),
        }
    }

    /// An unpacked update `ksplice-abc` changing `targets`.
    pub fn update(&self, targets: &[&str]) -> PathBuf {
        let top = self.dir.join(format!("build/ksplice-{KID}"));
        fs::create_dir_all(&top).unwrap();
        let contents = Contents::for_targets(KID, targets);
        fs::write(top.join("contents"), contents.render()).unwrap();
        fs::write(top.join("utsname"), format!("{RELEASE}\n{VERSION}\n")).unwrap();
        fs::write(top.join("description"), "A fix\n").unwrap();
        let mut files = vec![contents.core.file.clone()];
        for c in &contents.changes {
            files.extend([c.new_file.clone(), c.old_file.clone()]);
        }
        for f in files {
            fs::write(top.join(f), b"\x7fELF").unwrap();
        }
        top
    }

    /// Makes loading module `name` fail.
    pub fn fail_insmod(&self, name: &str) {
        fs::write(self.dir.join("init/fail"), name).unwrap();
    }

    /// The module operations so far.
    pub fn log(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("log"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// True when module `name` is loaded.
    pub fn loaded(&self, name: &str) -> bool {
        self.dir.join("sys/module").join(name).is_dir()
    }

    /// A path in the fake kernel's directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Registers update `abc` as ksplice-apply left it (core and vmlinux
    /// new code loaded), in `stage`.
    pub fn install(&self, stage: &str) {
        let u = self.dir.join("sys/kernel/ksplice").join(KID);
        fs::create_dir_all(&u).unwrap();
        for f in ["abort_cause", "conflicts"] {
            fs::copy(self.dir.join("init").join(f), u.join(f)).unwrap();
        }
        fs::write(u.join("stage"), format!("{stage}\n")).unwrap();
        for m in ["ksplice_abc", "ksplice_abc_vmlinux_new"] {
            fs::create_dir_all(self.dir.join("sys/module").join(m)).unwrap();
        }
    }
}

impl Drop for FakeKernel {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The quiet output conventions of `tool` (errors and aborts still print).
pub fn quiet_ui(tool: &'static str) -> Ui {
    Ui {
        tool,
        verbose: -1,
        raw_errors: false,
    }
}
