//! ksplice-apply, ksplice-undo and ksplice-view against a fake kernel.
//!
//! How the kernel is faked:
//! - `KSPLICE_SYSFS`, `KSPLICE_PROC` and `KSPLICE_STATE` point into a scratch
//!   directory; `proc/sys/kernel/{osrelease,version}` name the "running"
//!   kernel.
//! - `KSPLICE_INSMOD` and `KSPLICE_RMMOD` are shell scripts (run as `sh
//!   SCRIPT`) that append `insmod NAME` / `rmmod NAME` to a log and create or
//!   remove `sys/module/NAME`. Loading an old-code module registers the
//!   update like the real core does: it creates `sys/kernel/ksplice/<kid>/`
//!   with `abort_cause`, `conflicts`, `debug`, `partial` and `stage`.
//!   `FAKE_INSMOD_FAIL`, `FAKE_RMMOD_FAIL` and `FAKE_INSMOD_SLEEP` name
//!   modules whose loading fails, whose unloading fails, or whose loading
//!   takes a while.
//! - `stage` is a symbolic link to a FIFO served by a test thread that plays
//!   the kernel: it answers each read of the tool with the next state and
//!   records each write, so the exact sequence of stage operations is
//!   checked and the state read back after a write can differ from what
//!   was written, as in sysfs. The script alternates reads and writes (two
//!   reads in a row could not be told apart on a FIFO). A `stage` that is a
//!   link to `/dev/full` makes every write fail, as a refused write to sysfs
//!   does. Tests that only read the stage use a regular file.
//! - `TMPDIR` is a scratch directory that must be empty after every run
//!   (the unpacked update is removed on every exit path).

mod support;

use std::os::unix::process::ExitStatusExt;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::tar::{self, gz};

const APPLY: &str = env!("CARGO_BIN_EXE_ksplice-apply");
const UNDO: &str = env!("CARGO_BIN_EXE_ksplice-undo");
const VIEW: &str = env!("CARGO_BIN_EXE_ksplice-view");

const RELEASE: &str = "6.1.0-ksplice-test";
const VERSION: &str = "#1 SMP PREEMPT_DYNAMIC Thu Jan  1 00:00:00 UTC 2026";
const KID: &str = "abc";

const INSMOD: &str = r#"# Fake insmod: "loads" a module into the fake sysfs.
f=$1
name=$(basename "$f" .ko | tr - _)
echo "insmod $name" >> "$FAKE_LOG"
if [ ! -f "$f" ]; then
    echo "insmod: ERROR: could not load module $f: No such file or directory" >&2
    exit 1
fi
case " $FAKE_INSMOD_SLEEP " in *" $name "*) sleep 1 ;; esac
case " $FAKE_INSMOD_FAIL " in
*" $name "*)
    echo "insmod: ERROR: could not insert module $f: Invalid module format" >&2
    exit 1 ;;
esac
mkdir -p "$KSPLICE_SYSFS/module/$name"
case $name in
*_old)
    d=$KSPLICE_SYSFS/kernel/ksplice/$FAKE_KID
    if [ ! -d "$d" ]; then
        mkdir -p "$d"
        echo "${FAKE_ABORT_CAUSE:-ok}" > "$d/abort_cause"
        printf '%s' "$FAKE_CONFLICTS" > "$d/conflicts"
        echo "fake debug trace of $FAKE_KID" > "$d/debug"
        echo 0 > "$d/partial"
        if [ -n "$FAKE_STAGE" ]; then
            ln -s "$FAKE_STAGE" "$d/stage"
        else
            echo preparing > "$d/stage"
        fi
    fi ;;
esac
exit 0
"#;

const RMMOD: &str = r#"# Fake rmmod: "unloads" a module from the fake sysfs.
echo "rmmod $1" >> "$FAKE_LOG"
case " $FAKE_RMMOD_FAIL " in
*" $1 "*)
    echo "rmmod: ERROR: Module $1 is in use" >&2
    exit 1 ;;
esac
if [ ! -d "$KSPLICE_SYSFS/module/$1" ]; then
    echo "rmmod: ERROR: Module $1 is not currently loaded" >&2
    exit 1
fi
rm -rf "$KSPLICE_SYSFS/module/$1"
if [ "$1" = "ksplice_$FAKE_KID" ]; then
    rm -rf "$KSPLICE_SYSFS/kernel/ksplice/$FAKE_KID"
fi
exit 0
"#;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory with a fake kernel.
struct Fake {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

/// What a tool did.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// One step of the fake kernel's `stage` attribute.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// The tool reads the stage; the kernel answers this.
    Read(&'static str),
    /// The tool writes the stage.
    Write,
}

impl Fake {
    fn new(name: &str) -> Fake {
        let dir = std::env::temp_dir().join(format!(
            "ksplice-tools-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        for d in [
            "sys/module",
            "sys/kernel",
            "proc/sys/kernel",
            "state",
            "tmp",
        ] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        fs::write(
            dir.join("proc/sys/kernel/osrelease"),
            format!("{RELEASE}\n"),
        )
        .unwrap();
        fs::write(dir.join("proc/sys/kernel/version"), format!("{VERSION}\n")).unwrap();
        fs::write(dir.join("insmod.sh"), INSMOD).unwrap();
        fs::write(dir.join("rmmod.sh"), RMMOD).unwrap();
        fs::write(dir.join("log"), "").unwrap();
        let p = |s: &str| dir.join(s).display().to_string();
        let env = vec![
            ("KSPLICE_SYSFS".into(), p("sys")),
            ("KSPLICE_PROC".into(), p("proc")),
            ("KSPLICE_STATE".into(), p("state")),
            ("KSPLICE_LIB".into(), p("lib")),
            ("KSPLICE_INSMOD".into(), format!("sh {}", p("insmod.sh"))),
            ("KSPLICE_RMMOD".into(), format!("sh {}", p("rmmod.sh"))),
            ("TMPDIR".into(), p("tmp")),
            ("FAKE_LOG".into(), p("log")),
            ("FAKE_KID".into(), KID.into()),
        ];
        Fake { dir, env }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn set(&mut self, key: &str, value: &str) {
        self.env.push((key.into(), value.into()));
    }

    /// The module operations so far.
    fn log(&self) -> Vec<String> {
        fs::read_to_string(self.path("log"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn load_module(&self, name: &str) {
        fs::create_dir_all(self.path("sys/module").join(name)).unwrap();
    }

    fn loaded(&self, name: &str) -> bool {
        self.path("sys/module").join(name).is_dir()
    }

    fn update_dir(&self) -> PathBuf {
        self.path("sys/kernel/ksplice").join(KID)
    }

    /// Starts a tool; returns the child (stdout and stderr go to files).
    fn spawn(&self, tool: &str, args: &[&str]) -> std::process::Child {
        let mut c = Command::new(tool);
        c.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(fs::File::create(self.path("stdout")).unwrap())
            .stderr(fs::File::create(self.path("stderr")).unwrap());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.spawn().unwrap()
    }

    /// Waits for a tool (at most 30 s) and checks the temporary directory
    /// is clean.
    fn wait(&self, mut child: std::process::Child) -> Out {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tool hung (a stage operation other than the fake kernel expected?); stderr: {}",
                    fs::read_to_string(self.path("stderr")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let out = Out {
            code: status.code(),
            stdout: fs::read_to_string(self.path("stdout")).unwrap(),
            stderr: fs::read_to_string(self.path("stderr")).unwrap(),
        };
        let left: Vec<_> = fs::read_dir(self.path("tmp")).unwrap().collect();
        assert!(left.is_empty(), "temporary files left: {left:?}; {out:?}");
        assert!(
            !out.stderr.contains("panicked"),
            "the tool panicked: {}",
            out.stderr
        );
        out
    }

    fn run(&self, tool: &str, args: &[&str]) -> Out {
        self.wait(self.spawn(tool, args))
    }

    /// A FIFO for `stage`, served by a thread that plays the kernel; the
    /// thread returns the transcript (`read X` / `write Y`).
    fn kernel_stage(&mut self, script: Vec<Op>) -> JoinHandle<Vec<String>> {
        for w in script.windows(2) {
            assert!(
                !matches!(w, [Op::Read(_), Op::Read(_)]),
                "two reads in a row cannot be served on a FIFO"
            );
        }
        let fifo = self.path("stage.fifo");
        let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(st.success());
        self.set("FAKE_STAGE", &fifo.display().to_string());
        std::thread::spawn(move || {
            let mut transcript = Vec::new();
            for op in script {
                match op {
                    Op::Read(answer) => {
                        let mut f = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
                        f.write_all(format!("{answer}\n").as_bytes()).unwrap();
                        transcript.push(format!("read {answer}"));
                    }
                    Op::Write => {
                        let mut s = String::new();
                        fs::File::open(&fifo)
                            .unwrap()
                            .read_to_string(&mut s)
                            .unwrap();
                        transcript.push(format!("write {s}"));
                    }
                }
            }
            transcript
        })
    }

    /// An update as ksplice-apply left it in the kernel, for undo and view.
    fn install_update(&self, kid: &str, stage: StageFile) {
        let d = self.path("sys/kernel/ksplice").join(kid);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("abort_cause"), "ok\n").unwrap();
        fs::write(d.join("conflicts"), "").unwrap();
        fs::write(d.join("debug"), format!("fake debug trace of {kid}\n")).unwrap();
        fs::write(d.join("partial"), "0\n").unwrap();
        match stage {
            StageFile::Text(s) => fs::write(d.join("stage"), format!("{s}\n")).unwrap(),
            StageFile::Link(p) => std::os::unix::fs::symlink(p, d.join("stage")).unwrap(),
        }
        for m in [
            format!("ksplice_{kid}"),
            format!("ksplice_{kid}_vmlinux_new"),
        ] {
            self.load_module(&m);
        }
    }
}

enum StageFile {
    Text(&'static str),
    Link(PathBuf),
}

impl Drop for Fake {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn finish_kernel(h: JoinHandle<Vec<String>>) -> Vec<String> {
    let start = Instant::now();
    while !h.is_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the tool did not do every stage operation the fake kernel expected"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    h.join().unwrap()
}

// ---------------------------------------------------------------- tarballs

/// A minimal tar writer for hand-made (and hostile) archives.
#[derive(Default)]
struct Tar {
    data: Vec<u8>,
}

impl Tar {
    fn entry(&mut self, name: &str, typeflag: u8, body: &[u8]) -> &mut Self {
        self.raw_entry(name.as_bytes(), typeflag, body, b"")
    }

    fn raw_entry(&mut self, name: &[u8], typeflag: u8, body: &[u8], link: &[u8]) -> &mut Self {
        let h = tar::link_header(name, typeflag, body.len() as u64, link);
        self.data.extend_from_slice(&h);
        self.data.extend_from_slice(body);
        self.data
            .resize(self.data.len().div_ceil(tar::BLOCK) * tar::BLOCK, 0);
        self
    }

    fn tar(&self) -> Vec<u8> {
        tar::finish(self.data.clone())
    }

    fn gz(&self) -> Vec<u8> {
        tar::gz(&self.tar())
    }
}

/// The files of a good update `ksplice-abc` changing `targets`.
fn update_files(targets: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut contents = String::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for t in targets {
        let mid = format!("{KID}_{t}");
        contents.push_str(&format!(
            "change {t} ksplice_{mid}_new ksplice-{mid}-new.ko ksplice_{mid}_old ksplice-{mid}-old.ko\n"
        ));
        files.push((format!("ksplice-{mid}-new.ko"), b"\x7fELF new".to_vec()));
        files.push((format!("ksplice-{mid}-old.ko"), b"\x7fELF old".to_vec()));
    }
    contents.push_str(&format!("core ksplice_{KID} ksplice-{KID}.ko\n"));
    files.push((format!("ksplice-{KID}.ko"), b"\x7fELF core".to_vec()));
    files.push(("contents".into(), contents.into_bytes()));
    files.push((
        "utsname".into(),
        format!("{RELEASE}\n{VERSION}\n").into_bytes(),
    ));
    files.push(("description".into(), b"Fix the uptime rounding\n".to_vec()));
    files.push((
        "patched".into(),
        b"fs/proc/uptime.o uptime_proc_show\nfs/proc/uptime.o uptime_helper\n".to_vec(),
    ));
    files.push((
        "patch".into(),
        b"--- a/fs/proc/uptime.c\n+++ b/fs/proc/uptime.c\n".to_vec(),
    ));
    files.push(("api-version".into(), b"2\n".to_vec()));
    files.push(("timestamp".into(), b"1700000000\n".to_vec()));
    files.push(("report.json".into(), b"{}\n".to_vec()));
    files.push(("debug/objects/fs/proc/uptime.o".into(), b"\x7fELF".to_vec()));
    files
}

/// Writes an update tarball with GNU tar, as ksplice-create does.
fn write_update(fake: &Fake, targets: &[&str], edit: impl FnOnce(&Path)) -> PathBuf {
    let src = fake.path("build");
    let top = src.join(format!("ksplice-{KID}"));
    let _ = fs::remove_dir_all(&src);
    for (name, data) in update_files(targets) {
        let p = top.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }
    edit(&top);
    let tgz = fake.path(&format!("ksplice-{KID}.tar.gz"));
    let st = Command::new("tar")
        .arg("czf")
        .arg(&tgz)
        .arg("-C")
        .arg(&src)
        .arg(format!("ksplice-{KID}"))
        .status()
        .unwrap();
    assert!(st.success());
    fs::remove_dir_all(&src).unwrap();
    tgz
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------- apply

#[test]
fn apply_loads_in_order_applies_and_records() {
    let mut fake = Fake::new("apply");
    fake.load_module("kobject_example");
    let tgz = write_update(&fake, &["vmlinux", "kobject_example"], |_| {});
    let kernel = fake.kernel_stage(vec![Op::Write, Op::Read("applied")]);
    let out = fake.run(APPLY, &[s(&tgz)]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(finish_kernel(kernel), ["write apply", "read applied"]);
    assert_eq!(
        fake.log(),
        [
            "insmod ksplice_abc",
            "insmod ksplice_abc_vmlinux_new",
            "insmod ksplice_abc_vmlinux_old",
            "insmod ksplice_abc_kobject_example_new",
            "insmod ksplice_abc_kobject_example_old",
            "rmmod ksplice_abc_vmlinux_old",
            "rmmod ksplice_abc_kobject_example_old",
        ]
    );
    assert!(out.stdout.contains("Loading modules..."), "{out:?}");
    assert!(out.stdout.contains("Applying Ksplice update abc..."));
    assert!(out.stdout.trim_end().ends_with("Done!"));
    assert!(fake.loaded("ksplice_abc") && fake.loaded("ksplice_abc_vmlinux_new"));
    assert!(!fake.loaded("ksplice_abc_vmlinux_old"));
    // The record.
    let rec = fake.path("state/abc");
    assert_eq!(
        fs::read_to_string(rec.join("description")).unwrap(),
        "Fix the uptime rounding\n"
    );
    assert!(
        fs::read_to_string(rec.join("patched"))
            .unwrap()
            .contains("uptime_proc_show")
    );
    assert!(
        fs::read_to_string(rec.join("contents"))
            .unwrap()
            .contains("core ksplice_abc")
    );
    // Partial was not asked for.
    assert_eq!(
        fs::read_to_string(fake.update_dir().join("partial")).unwrap(),
        "0\n"
    );
}

#[test]
fn apply_quiet_prints_nothing_and_verbose_shows_commands() {
    let mut fake = Fake::new("quiet");
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let kernel = fake.kernel_stage(vec![Op::Write, Op::Read("applied")]);
    let out = fake.run(APPLY, &["-q", s(&tgz)]);
    assert_eq!(out.code, Some(0), "{out:?}");
    finish_kernel(kernel);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "");

    let mut fake = Fake::new("verbose");
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let kernel = fake.kernel_stage(vec![Op::Write, Op::Read("applied")]);
    let out = fake.run(APPLY, &["-v", s(&tgz)]);
    assert_eq!(out.code, Some(0), "{out:?}");
    finish_kernel(kernel);
    assert!(out.stdout.contains("insmod.sh "), "{}", out.stdout);
    assert!(out.stdout.contains("echo apply > "), "{}", out.stdout);
}

#[test]
fn apply_from_an_unpacked_directory() {
    let mut fake = Fake::new("dir");
    let top = fake.path("upd/ksplice-abc");
    for (name, data) in update_files(&["vmlinux"]) {
        let p = top.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }
    let kernel = fake.kernel_stage(vec![Op::Write, Op::Read("applied")]);
    let out = fake.run(APPLY, &[s(&top)]);
    assert_eq!(out.code, Some(0), "{out:?}");
    finish_kernel(kernel);
    assert!(
        top.join("ksplice-abc.ko").is_file(),
        "the tree is left alone"
    );
}

#[test]
fn apply_abort_explains_and_unloads_in_reverse() {
    let mut fake = Fake::new("abort");
    fake.load_module("kobject_example");
    fake.set("FAKE_ABORT_CAUSE", "no_match");
    let tgz = write_update(&fake, &["vmlinux", "kobject_example"], |_| {});
    let kernel = fake.kernel_stage(vec![Op::Write, Op::Read("preparing"), Op::Write]);
    let debug = fake.path("debug.txt");
    let out = fake.run(APPLY, &[&format!("--debugfile={}", s(&debug)), s(&tgz)]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(
        finish_kernel(kernel),
        ["write apply", "read preparing", "write cleanup"]
    );
    assert!(out.stderr.contains("was not applied"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("does not match the code the update was built against"),
        "{}",
        out.stderr
    );
    assert_eq!(
        fs::read_to_string(&debug).unwrap(),
        "fake debug trace of abc\n"
    );
    assert!(out.stdout.contains("Debugging output saved to"));
    let log = fake.log();
    assert_eq!(
        log[5..],
        [
            "rmmod ksplice_abc_kobject_example_old",
            "rmmod ksplice_abc_kobject_example_new",
            "rmmod ksplice_abc_vmlinux_old",
            "rmmod ksplice_abc_vmlinux_new",
            "rmmod ksplice_abc",
        ]
    );
    assert!(!fake.update_dir().exists());
    assert!(
        !fake.path("state/abc").exists(),
        "no record of a failed update"
    );
}

#[test]
fn apply_refused_write_is_an_abort() {
    let mut fake = Fake::new("refused");
    fake.set("FAKE_ABORT_CAUSE", "code_busy");
    fake.set("FAKE_CONFLICTS", "bash 4242 uptime_proc_show\n");
    fake.set("FAKE_STAGE", "/dev/full");
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let out = fake.run(APPLY, &[s(&tgz)]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("always in use"), "{}", out.stderr);
    assert!(
        out.stderr.contains("Process bash (pid 4242)") && out.stderr.contains("uptime_proc_show"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("cannot write cleanup"),
        "a failed cleanup write is reported: {}",
        out.stderr
    );
    assert_eq!(
        fake.log(),
        [
            "insmod ksplice_abc",
            "insmod ksplice_abc_vmlinux_new",
            "insmod ksplice_abc_vmlinux_old",
            "rmmod ksplice_abc_vmlinux_old",
            "rmmod ksplice_abc_vmlinux_new",
            "rmmod ksplice_abc",
        ]
    );
}

/// What the kernel's `conflicts` lists after a code_busy abort: one line
/// per busy task, `NAME PID SYMBOL...`.
const BUSY: &str = "bash 4242 uptime_proc_show uptime_helper\nsshd 77 uptime_proc_show\n";

/// Checks `stderr` names each busy task of [`BUSY`], its pid and functions.
fn assert_names_busy_tasks(stderr: &str) {
    for want in [
        "Process bash (pid 4242) is using code the update changes:\n  uptime_proc_show\n  uptime_helper\n",
        "Process sshd (pid 77) is using code the update changes:\n  uptime_proc_show\n",
    ] {
        assert!(stderr.contains(want), "{want:?} not in {stderr}");
    }
}

#[test]
fn apply_code_busy_names_the_busy_tasks() {
    let mut fake = Fake::new("applybusy");
    fake.set("FAKE_ABORT_CAUSE", "code_busy");
    fake.set("FAKE_CONFLICTS", BUSY);
    fake.set("FAKE_STAGE", "/dev/full");
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let out = fake.run(APPLY, &[s(&tgz)]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr
            .starts_with("ksplice-apply: Ksplice update abc was not applied:\n"),
        "{}",
        out.stderr
    );
    assert_names_busy_tasks(&out.stderr);

    let out = fake.run(APPLY, &["--raw-errors", s(&tgz)]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stderr, format!("code_busy\n{BUSY}"));
}

#[test]
fn apply_raw_errors_print_the_abort_code_first() {
    let mut fake = Fake::new("raw");
    fake.set("FAKE_ABORT_CAUSE", "failed_to_find");
    fake.set("FAKE_STAGE", "/dev/full");
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let out = fake.run(APPLY, &["--raw-errors", s(&tgz)]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stderr.lines().next(), Some("failed_to_find"));

    let out = fake.run(APPLY, &["--raw-errors", "/nonexistent.tar.gz"]);
    assert_eq!(out.code, Some(1));
    let mut lines = out.stderr.lines();
    assert_eq!(lines.next(), Some("OTHER"));
    assert!(lines.next().unwrap().contains("/nonexistent.tar.gz"));
}

#[test]
fn apply_debug_prints_the_trace() {
    let mut fake = Fake::new("debug");
    fake.set("FAKE_STAGE", "/dev/full");
    fake.set("FAKE_ABORT_CAUSE", "unexpected");
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let out = fake.run(APPLY, &["--debug", s(&tgz)]);
    assert_eq!(out.code, Some(2));
    assert!(out.stdout.contains("fake debug trace of abc"), "{out:?}");
}

#[test]
fn apply_load_failure_unloads_what_was_loaded() {
    let mut fake = Fake::new("loadfail");
    fake.load_module("kobject_example");
    fake.set("FAKE_INSMOD_FAIL", "ksplice_abc_kobject_example_old");
    let tgz = write_update(&fake, &["vmlinux", "kobject_example"], |_| {});
    let out = fake.run(APPLY, &[s(&tgz)]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("cannot load the old code module ksplice_abc_kobject_example_old"),
        "{}",
        out.stderr
    );
    assert_eq!(
        fake.log(),
        [
            "insmod ksplice_abc",
            "insmod ksplice_abc_vmlinux_new",
            "insmod ksplice_abc_vmlinux_old",
            "insmod ksplice_abc_kobject_example_new",
            "insmod ksplice_abc_kobject_example_old",
            "rmmod ksplice_abc_kobject_example_new",
            "rmmod ksplice_abc_vmlinux_old",
            "rmmod ksplice_abc_vmlinux_new",
            "rmmod ksplice_abc",
        ]
    );
}

#[test]
fn apply_reports_rmmod_failures_during_cleanup() {
    let mut fake = Fake::new("rmmodfail");
    fake.set("FAKE_STAGE", "/dev/full");
    fake.set("FAKE_RMMOD_FAIL", "ksplice_abc_vmlinux_new");
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let out = fake.run(APPLY, &[s(&tgz)]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .contains("rmmod.sh ksplice_abc_vmlinux_new failed"),
        "{}",
        out.stderr
    );
    // Unloading went on.
    assert_eq!(fake.log().last().unwrap(), "rmmod ksplice_abc");
}

#[test]
fn apply_interrupted_unloads() {
    let mut fake = Fake::new("interrupt");
    fake.set("FAKE_INSMOD_SLEEP", "ksplice_abc_vmlinux_new");
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let child = fake.spawn(APPLY, &[s(&tgz)]);
    let start = Instant::now();
    while !fake
        .log()
        .iter()
        .any(|l| l == "insmod ksplice_abc_vmlinux_new")
    {
        assert!(start.elapsed() < Duration::from_secs(20), "no insmod");
        std::thread::sleep(Duration::from_millis(5));
    }
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let out = fake.wait(child);
    assert_eq!(out.code, Some(130), "{out:?}");
    assert!(
        out.stderr
            .contains("ksplice-apply: interrupted; the update's modules are unloaded"),
        "{out:?}"
    );
    assert_eq!(
        fake.log(),
        [
            "insmod ksplice_abc",
            "insmod ksplice_abc_vmlinux_new",
            "rmmod ksplice_abc_vmlinux_new",
            "rmmod ksplice_abc",
        ]
    );
}

#[test]
fn apply_already_applied_does_nothing() {
    let fake = Fake::new("already");
    fake.install_update(KID, StageFile::Text("applied"));
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let out = fake.run(APPLY, &[s(&tgz)]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("Ksplice update abc already applied."));
    assert!(fake.log().is_empty());
}

/// The installed-updates options, through the binaries: install keeps the
/// tarball under KSPLICE_LIB/RELEASE, view lists it, --all-installed finds
/// it applied, uninstall of what is not applied only drops it.
#[test]
fn install_all_installed_and_uninstall() {
    let fake = Fake::new("installed");
    fake.install_update(KID, StageFile::Text("applied"));
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let out = fake.run(APPLY, &["--install", s(&tgz)]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("Installed Ksplice update abc"),
        "{out:?}"
    );
    let kept = fake.path("lib").join(RELEASE).join("ksplice-abc.tar.gz");
    assert!(kept.is_file(), "{}", kept.display());
    let out = fake.run(VIEW, &[]);
    assert!(
        out.stdout.contains("Installed for this kernel") && out.stdout.contains("abc (applied)"),
        "{out:?}"
    );
    let out = fake.run(APPLY, &["--all-installed"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("already applied"), "{out:?}");
    let out = fake.run(APPLY, &["--install", s(&fake.path("sys"))]);
    assert_eq!(out.code, Some(1), "a directory: {out:?}");
    let out = fake.run(APPLY, &["--all-installed", s(&tgz)]);
    assert_ne!(
        out.code,
        Some(0),
        "--all-installed takes no update: {out:?}"
    );
    // Reversed in the kernel: uninstall only drops it from the store.
    fake.install_update(KID, StageFile::Text("reversed"));
    let out = fake.run(UNDO, &["--uninstall", "abc"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!kept.exists());
    let out = fake.run(UNDO, &["--uninstall", "abc"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("is not installed"), "{out:?}");
    let out = fake.run(APPLY, &["--all-installed"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("No Ksplice update is installed"),
        "{out:?}"
    );
}

#[test]
fn apply_refuses_a_loaded_unapplied_update() {
    let fake = Fake::new("preparing");
    fake.install_update(KID, StageFile::Text("reversed"));
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let out = fake.run(APPLY, &[s(&tgz)]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("not applied (stage reversed)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("rmmod ksplice_abc_vmlinux_new ksplice_abc")
    );
    assert!(fake.log().is_empty());
}

#[test]
fn apply_target_not_loaded_needs_partial() {
    let mut fake = Fake::new("partial");
    let tgz = write_update(&fake, &["vmlinux", "kobject_example"], |_| {});
    let out = fake.run(APPLY, &[s(&tgz)]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("module kobject_example is not loaded"));
    assert!(out.stderr.contains("--partial"));
    assert!(fake.log().is_empty(), "nothing loaded");

    let kernel = fake.kernel_stage(vec![Op::Write, Op::Read("applied")]);
    let out = fake.run(APPLY, &["--partial", s(&tgz)]);
    assert_eq!(out.code, Some(0), "{out:?}");
    finish_kernel(kernel);
    assert_eq!(
        fs::read_to_string(fake.update_dir().join("partial"))
            .unwrap()
            .lines()
            .next(),
        Some("1")
    );
    assert_eq!(fake.log().len(), 5 + 2, "{:?}", fake.log());
}

#[test]
fn apply_refuses_an_update_for_another_kernel() {
    let fake = Fake::new("utsname");
    let tgz = write_update(&fake, &["vmlinux"], |top| {
        fs::write(top.join("utsname"), "6.1.0-other\n#7 SMP\n").unwrap();
    });
    let out = fake.run(APPLY, &[s(&tgz)]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let err = out.stderr.trim_end();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("ksplice-apply: {}: ", s(&tgz))),
        "{err}"
    );
    for want in ["6.1.0-other", "#7 SMP", RELEASE, VERSION] {
        assert!(err.contains(want), "{want} in {err}");
    }
    assert!(fake.log().is_empty());

    // Same release, other build.
    fs::write(
        fake.path("proc/sys/kernel/version"),
        "#2 SMP PREEMPT_DYNAMIC\n",
    )
    .unwrap();
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let out = fake.run(APPLY, &[s(&tgz)]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("#2 SMP PREEMPT_DYNAMIC"),
        "{}",
        out.stderr
    );

    // An update that does not know its kernel's version string is checked
    // by release: another release is still refused.
    let tgz = write_update(&fake, &["vmlinux"], |top| {
        fs::write(top.join("utsname"), "6.1.0-other\n\n").unwrap();
    });
    let out = fake.run(APPLY, &[s(&tgz)]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("6.1.0-other"), "{}", out.stderr);
    assert!(fake.log().is_empty());
}

#[test]
fn apply_refuses_bad_contents() {
    let fake = Fake::new("contents");
    let cases: Vec<(&str, &str)> = vec![
        ("bogus line\n", "unknown kind of line \"bogus\""),
        ("core ksplice_abc ksplice-abc.ko\n", "no change line"),
        (
            "change vmlinux ksplice_abc_vmlinux_new ksplice-abc_vmlinux-new.ko ksplice_abc_vmlinux_old ksplice-abc_vmlinux-old.ko\n",
            "no core line",
        ),
        (
            "change vmlinux ksplice_abc_vmlinux_new ksplice-abc_vmlinux-new.ko ksplice_abc_vmlinux_old missing.ko\ncore ksplice_abc ksplice-abc.ko\n",
            "missing.ko is not in the update",
        ),
        (
            "change vmlinux ksplice_abc_vmlinux_new ksplice-abc_vmlinux-new.ko ksplice_abc;rm ksplice-abc_vmlinux-old.ko\ncore ksplice_abc ksplice-abc.ko\n",
            "bad module name",
        ),
        (
            "change vmlinux ksplice_abc_vmlinux_new ../../etc/x.ko ksplice_abc_vmlinux_old ksplice-abc_vmlinux-old.ko\ncore ksplice_abc ksplice-abc.ko\n",
            "bad module file name",
        ),
    ];
    for (contents, want) in cases {
        let tgz = write_update(&fake, &["vmlinux"], |top| {
            fs::write(top.join("contents"), contents).unwrap();
        });
        let out = fake.run(APPLY, &[s(&tgz)]);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stderr.contains(want), "{want} in {}", out.stderr);
        assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    }
    let tgz = write_update(&fake, &["vmlinux"], |top| {
        fs::remove_file(top.join("utsname")).unwrap();
    });
    let out = fake.run(APPLY, &[s(&tgz)]);
    assert!(out.stderr.contains("no utsname file"), "{}", out.stderr);
    assert!(fake.log().is_empty());
}

#[test]
fn hostile_tarballs_are_refused_by_every_tool() {
    let fake = Fake::new("hostile");
    let mut cases: Vec<(&str, Vec<u8>, String)> = Vec::new();
    let mut case = |name: &'static str, data: Vec<u8>, want: &str| {
        cases.push((name, data, want.to_string()));
    };
    let base = || {
        let mut t = Tar::default();
        t.entry("ksplice-abc/", b'5', b"");
        t.entry(
            "ksplice-abc/contents",
            b'0',
            b"core ksplice_abc ksplice-abc.ko\n",
        );
        t
    };
    case(
        "dotdot",
        base().entry("ksplice-abc/../../evil", b'0', b"x").gz(),
        "ksplice-abc/../../evil",
    );
    case(
        "absolute",
        base().entry("/tmp/evil", b'0', b"x").gz(),
        "/tmp/evil",
    );
    case(
        "symlink",
        base()
            .raw_entry(b"ksplice-abc/utsname", b'2', b"", b"/etc/passwd")
            .gz(),
        "symbolic link",
    );
    case(
        "hardlink",
        base()
            .raw_entry(b"ksplice-abc/h", b'1', b"", b"ksplice-abc/contents")
            .gz(),
        "hard link",
    );
    case(
        "device",
        base().entry("ksplice-abc/mem", b'3', b"").gz(),
        "device",
    );
    case(
        "fifo",
        base().entry("ksplice-abc/pipe", b'6', b"").gz(),
        "named pipe",
    );
    case(
        "outside",
        base().entry("other/contents", b'0', b"x").gz(),
        "outside the update's top directory",
    );
    let t = base().entry("ksplice-abc/big.ko", b'0', &[1u8; 3000]).tar();
    case("truncated", gz(&t[..2048]), "truncated");
    let mut t = base().tar();
    t[600] ^= 0x20;
    case("checksum", gz(&t), "checksum");
    case(
        "garbage",
        b"this is not an update at all".to_vec(),
        "not a gzip",
    );
    case("gzgarbage", gz(&[0x55u8; 4096]), "checksum");
    let mut z = base().gz();
    let n = z.len();
    z[n / 2] ^= 0xff;
    case("corruptgz", z, "");
    assert_refused_by_every_tool(&fake, &cases, None);
    assert!(!fake.path("evil").exists() && !Path::new("/tmp/evil").exists());
}

/// Every entry under `dir`, relative, with its kind (`d`, `f`, `l`, `o`),
/// sorted; for checking that a tool wrote nothing outside its private
/// temporary directory.
fn snapshot(dir: &Path, skip: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if skip.contains(&rel.as_str()) {
                continue;
            }
            let ft = e.file_type().unwrap();
            let kind = if ft.is_symlink() {
                "l"
            } else if ft.is_dir() {
                stack.push(p.clone());
                "d"
            } else if ft.is_file() {
                "f"
            } else {
                "o"
            };
            out.push(format!("{kind} {rel}"));
        }
    }
    out.sort();
    out
}

/// Gives each `(name, archive, wanted message)` to ksplice-apply,
/// ksplice-view and ksplice-undo (which all open tarballs): each must refuse
/// it with one clear line naming the file and the cause, exit status 1, load
/// nothing (the fake insmod log stays empty) and write nothing anywhere but
/// its private temporary directory (nor create `outside`).
fn assert_refused_by_every_tool(
    fake: &Fake,
    cases: &[(&str, Vec<u8>, String)],
    outside: Option<&Path>,
) {
    let skip = ["stdout", "stderr", "log"];
    for (name, data, want) in cases {
        let f = fake.path(&format!("{name}.tar.gz"));
        fs::write(&f, data).unwrap();
        let before = snapshot(&fake.dir, &skip);
        for tool in [APPLY, VIEW, UNDO] {
            let tool_name = Path::new(tool).file_name().unwrap().to_str().unwrap();
            let out = fake.run(tool, &[s(&f)]);
            assert_eq!(out.code, Some(1), "{tool_name} {name}: {out:?}");
            let err = out.stderr.trim_end();
            assert_eq!(err.lines().count(), 1, "{tool_name} {name}: {err}");
            assert!(
                err.starts_with(&format!("{tool_name}: {}: ", s(&f))),
                "{tool_name} {name}: {err}"
            );
            assert!(
                err.contains(want.as_str()),
                "{tool_name} {name}: {want:?} in {err}"
            );
            assert!(
                fake.log().is_empty(),
                "{tool_name} {name}: something was loaded"
            );
            assert_eq!(
                snapshot(&fake.dir, &skip),
                before,
                "{tool_name} {name}: written outside the private directory"
            );
        }
        if let Some(outside) = outside {
            assert!(
                !outside.exists(),
                "{name}: {} was created",
                outside.display()
            );
        }
        fs::remove_file(&f).unwrap();
    }
}

/// More hostile archives and updates, each through every tool
/// ([`assert_refused_by_every_tool`]).
#[test]
fn hostile_updates_are_refused_by_every_tool() {
    let fake = Fake::new("hostile2");
    // Places an escaping entry would reach (none may exist afterwards).
    let outside = std::env::temp_dir().join(format!("ksplice-hostile-{}", std::process::id()));
    let _ = fs::remove_dir_all(&outside);
    let out_s = outside.display().to_string();
    let files = update_files(&["vmlinux"]);
    // A complete good update as a Tar, with `edit` applied to its files.
    type Files = Vec<(String, Vec<u8>)>;
    let update = |edit: &dyn Fn(&mut Files)| -> Tar {
        let mut f = files.clone();
        edit(&mut f);
        let mut t = Tar::default();
        t.entry("ksplice-abc/", b'5', b"");
        for (name, data) in &f {
            if let Some(dir) = name.strip_suffix('/') {
                t.entry(&format!("ksplice-abc/{dir}/"), b'5', b"");
            } else {
                t.entry(&format!("ksplice-abc/{name}"), b'0', data);
            }
        }
        t
    };
    let contents = |text: &str| {
        let text = text.to_string();
        update(&move |f| {
            f.iter_mut().find(|x| x.0 == "contents").unwrap().1 = text.clone().into_bytes()
        })
    };
    let good_change = "change vmlinux ksplice_abc_vmlinux_new ksplice-abc_vmlinux-new.ko ksplice_abc_vmlinux_old ksplice-abc_vmlinux-old.ko\n";
    let good_core = "core ksplice_abc ksplice-abc.ko\n";
    let mut cases: Vec<(&str, Vec<u8>, String)> = Vec::new();
    let mut case = |name: &'static str, data: Vec<u8>, want: &str| {
        cases.push((name, data, want.to_string()));
    };

    // Entries that would reach outside, links and special files.
    case(
        "block-device",
        update(&|_| {}).entry("ksplice-abc/sda", b'4', b"").gz(),
        "device file",
    );
    case(
        "symlink-relative-out",
        update(&|_| {})
            .raw_entry(b"ksplice-abc/up", b'2', b"", b"../../../..")
            .gz(),
        "symbolic link",
    );
    case(
        "symlink-then-through",
        update(&|_| {})
            .raw_entry(b"ksplice-abc/l", b'2', b"", out_s.as_bytes())
            .entry("ksplice-abc/l/evil.ko", b'0', b"x")
            .gz(),
        "symbolic link",
    );
    case(
        "symlink-as-contents",
        update(&|f| f.retain(|x| x.0 != "contents"))
            .raw_entry(b"ksplice-abc/contents", b'2', b"", b"/etc/passwd")
            .gz(),
        "symbolic link",
    );
    case(
        "hardlink-absolute",
        update(&|_| {})
            .raw_entry(b"ksplice-abc/pw", b'1', b"", b"/etc/passwd")
            .gz(),
        "hard link",
    );
    case(
        "hardlink-dotdot",
        update(&|_| {})
            .raw_entry(b"ksplice-abc/pw", b'1', b"", b"../../../etc/passwd")
            .gz(),
        "hard link",
    );
    let long = format!("ksplice-abc/{}/../../../../evil", "d".repeat(120));
    case(
        "gnu-longname-dotdot",
        update(&|_| {})
            .entry("././@LongLink", b'L', long.as_bytes())
            .entry("ksplice-abc/short", b'0', b"x")
            .gz(),
        "'..'",
    );
    let pax = {
        let rec = format!("path=ksplice-abc/../{}/evil\n", "x".repeat(8));
        let len = rec.len() + 3;
        let len = len + (len + 1).to_string().len() - 2;
        format!("{len} {rec}")
    };
    case(
        "pax-path-dotdot",
        update(&|_| {})
            .entry("ksplice-abc/PaxHeader", b'x', pax.as_bytes())
            .entry("ksplice-abc/innocent", b'0', b"x")
            .gz(),
        "'..'",
    );
    case(
        "absolute-in-update",
        update(&|_| {})
            .entry(&format!("{out_s}/evil.ko"), b'0', b"x")
            .gz(),
        "absolute path",
    );
    case(
        "dotdot-after-files",
        update(&|_| {})
            .entry("ksplice-abc/debug/../../evil", b'0', b"x")
            .gz(),
        "'..'",
    );

    // contents naming files outside the update.
    for (name, text, want) in [
        (
            "contents-dotdot-core",
            format!("{good_change}core ksplice_abc ../../etc/x.ko\n"),
            "bad module file name \"../../etc/x.ko\"",
        ),
        (
            "contents-absolute-core",
            format!("{good_change}core ksplice_abc /abs.ko\n"),
            "bad module file name \"/abs.ko\"",
        ),
        (
            "contents-absolute-new",
            format!(
                "change vmlinux ksplice_abc_vmlinux_new /abs.ko ksplice_abc_vmlinux_old ksplice-abc_vmlinux-old.ko\n{good_core}"
            ),
            "bad module file name \"/abs.ko\"",
        ),
        (
            "contents-subdir",
            format!(
                "change vmlinux ksplice_abc_vmlinux_new debug/x.ko ksplice_abc_vmlinux_old ksplice-abc_vmlinux-old.ko\n{good_core}"
            ),
            "bad module file name \"debug/x.ko\"",
        ),
        (
            "contents-hidden",
            format!("{good_change}core ksplice_abc ..ko\n"),
            "bad module file name",
        ),
        (
            "contents-foreign-module",
            format!(
                "change vmlinux ext4 ksplice-abc_vmlinux-new.ko ksplice_abc_vmlinux_old ksplice-abc_vmlinux-old.ko\n{good_core}"
            ),
            "does not belong to update abc",
        ),
        ("contents-empty", String::new(), "no core line"),
        (
            "contents-garbage",
            "\u{1}\u{2}ELF garbage \u{7f}\n\n".to_string(),
            "unknown kind of line",
        ),
    ] {
        case(name, contents(&text).gz(), want);
    }
    case(
        "contents-invalid-utf8",
        update(&|f| {
            f.iter_mut().find(|x| x.0 == "contents").unwrap().1 = vec![0xff, 0xfe, b'\n', 0x80];
        })
        .gz(),
        "contents: cannot read",
    );
    case(
        "contents-missing",
        update(&|f| f.retain(|x| x.0 != "contents")).gz(),
        "the update has no contents file",
    );
    case(
        "contents-directory",
        update(&|f| {
            f.retain(|x| x.0 != "contents");
            f.push(("contents/".into(), Vec::new()));
        })
        .gz(),
        "contents: not a regular file",
    );
    case(
        "module-file-missing",
        update(&|f| f.retain(|x| x.0 != "ksplice-abc.ko")).gz(),
        "module file ksplice-abc.ko is not in the update",
    );
    case(
        "utsname-garbage",
        update(&|f| {
            f.iter_mut().find(|x| x.0 == "utsname").unwrap().1 = b"one line only".to_vec();
        })
        .gz(),
        "utsname is not two lines",
    );
    case(
        "api-version-other",
        update(&|f| {
            f.iter_mut().find(|x| x.0 == "api-version").unwrap().1 = b"99\n".to_vec();
        })
        .gz(),
        "update format version 99",
    );
    case(
        "top-not-ksplice",
        {
            let mut t = Tar::default();
            t.entry("update/", b'5', b"");
            for (name, data) in &files {
                t.entry(&format!("update/{name}"), b'0', data);
            }
            t.gz()
        },
        "not ksplice-ID",
    );

    // Truncation at every kind of place.
    let whole = update(&|_| {}).tar();
    case("truncated-at-header", gz(&whole[..1024]), "truncated");
    case("truncated-mid-header", gz(&whole[..700]), "truncated");
    case(
        "no-end-blocks",
        gz(&whole[..whole.len() - 1024]),
        "truncated",
    );
    let z = gz(&whole);
    case("gzip-cut", z[..z.len() / 2].to_vec(), "");
    case("gzip-cut-trailer", z[..z.len() - 4].to_vec(), "");
    case("empty-file", Vec::new(), "not a gzip");

    assert_refused_by_every_tool(&fake, &cases, Some(&outside));
    for p in ["/evil", "/abs.ko", "/etc/x.ko"] {
        assert!(!Path::new(p).exists(), "{p}");
    }
}

// ---------------------------------------------------------------- undo

#[test]
fn undo_reverses_and_unloads() {
    let mut fake = Fake::new("undo");
    let kernel = fake.kernel_stage(vec![
        Op::Read("applied"),
        Op::Write,
        Op::Read("reversed"),
        Op::Write,
    ]);
    let fifo = fake.path("stage.fifo");
    fake.install_update(KID, StageFile::Link(fifo));
    let rec = fake.path("state/abc");
    fs::create_dir_all(&rec).unwrap();
    let contents: String = update_files(&["vmlinux"])
        .into_iter()
        .find(|(n, _)| n == "contents")
        .map(|(_, d)| String::from_utf8(d).unwrap())
        .unwrap();
    fs::write(rec.join("contents"), contents).unwrap();
    let out = fake.run(UNDO, &[KID]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        finish_kernel(kernel),
        [
            "read applied",
            "write reverse",
            "read reversed",
            "write cleanup"
        ]
    );
    assert_eq!(
        fake.log(),
        ["rmmod ksplice_abc_vmlinux_new", "rmmod ksplice_abc"]
    );
    assert!(!rec.exists(), "the record is removed");
    assert!(out.stdout.contains("Done!"));
}

#[test]
fn undo_without_a_record_finds_the_modules() {
    let mut fake = Fake::new("undoglob");
    let kernel = fake.kernel_stage(vec![
        Op::Read("applied"),
        Op::Write,
        Op::Read("reversed"),
        Op::Write,
    ]);
    fake.install_update(KID, StageFile::Link(fake.path("stage.fifo")));
    fake.load_module("ksplice_abc_kobject_example_new");
    fake.load_module("ksplice_abc_kobject_example_old");
    // A module name is accepted for the id.
    let out = fake.run(UNDO, &["ksplice_abc_vmlinux_new"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    finish_kernel(kernel);
    assert_eq!(
        fake.log(),
        [
            "rmmod ksplice_abc_kobject_example_old",
            "rmmod ksplice_abc_vmlinux_new",
            "rmmod ksplice_abc_kobject_example_new",
            "rmmod ksplice_abc",
        ]
    );
}

#[test]
fn undo_by_tarball() {
    let mut fake = Fake::new("undofile");
    let kernel = fake.kernel_stage(vec![
        Op::Read("applied"),
        Op::Write,
        Op::Read("reversed"),
        Op::Write,
    ]);
    fake.install_update(KID, StageFile::Link(fake.path("stage.fifo")));
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    fs::rename(&tgz, fake.path("update.tgz")).unwrap();
    let out = fake.run(UNDO, &[s(&fake.path("update.tgz"))]);
    assert_eq!(out.code, Some(0), "{out:?}");
    finish_kernel(kernel);
    assert_eq!(
        fake.log(),
        ["rmmod ksplice_abc_vmlinux_new", "rmmod ksplice_abc"]
    );
}

#[test]
fn undo_abort_leaves_the_update_applied() {
    let mut fake = Fake::new("undoabort");
    let kernel = fake.kernel_stage(vec![Op::Read("applied"), Op::Write, Op::Read("applied")]);
    fake.install_update(KID, StageFile::Link(fake.path("stage.fifo")));
    fs::write(fake.update_dir().join("abort_cause"), "code_busy\n").unwrap();
    fs::write(
        fake.update_dir().join("conflicts"),
        "sshd 77 uptime_proc_show\n",
    )
    .unwrap();
    fs::create_dir_all(fake.path("state/abc")).unwrap();
    let out = fake.run(UNDO, &["--raw-errors", KID]);
    assert_eq!(out.code, Some(2), "{out:?}");
    finish_kernel(kernel);
    assert_eq!(
        out.stderr, "code_busy\nsshd 77 uptime_proc_show\n",
        "{out:?}"
    );
    assert!(fake.log().is_empty());
    assert!(fake.path("state/abc").exists(), "the record is kept");
}

#[test]
fn undo_code_busy_names_the_busy_tasks() {
    let fake = Fake::new("undobusy");
    // Writing `reverse` over `applied` does not reverse the update.
    fake.install_update(KID, StageFile::Text("applied"));
    fs::write(fake.update_dir().join("abort_cause"), "code_busy\n").unwrap();
    fs::write(fake.update_dir().join("conflicts"), BUSY).unwrap();
    let out = fake.run(UNDO, &[KID]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.starts_with(
            "ksplice-undo: Ksplice update abc was not reversed (it is still applied):\n"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("always in use"), "{}", out.stderr);
    assert_names_busy_tasks(&out.stderr);
    assert!(fake.log().is_empty());

    fs::write(fake.update_dir().join("stage"), "applied\n").unwrap();
    let out = fake.run(UNDO, &["--raw-errors", KID]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stderr, format!("code_busy\n{BUSY}"));
}

#[test]
fn undo_needs_an_applied_update() {
    let fake = Fake::new("undonot");
    let out = fake.run(UNDO, &[KID]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        "ksplice-undo: Ksplice update abc is not present in the kernel\n"
    );
    fake.install_update(KID, StageFile::Text("preparing"));
    let out = fake.run(UNDO, &["ksplice-abc"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("Ksplice update abc is not applied (stage preparing)"),
        "{}",
        out.stderr
    );
    assert!(fake.log().is_empty());
    let out = fake.run(UNDO, &["no/such/update.tar.gz"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no such file"), "{}", out.stderr);
}

// ---------------------------------------------------------------- view

#[test]
fn view_lists_applied_updates() {
    let fake = Fake::new("view");
    fake.install_update("abc", StageFile::Text("applied"));
    fake.install_update("def", StageFile::Text("reversed"));
    fake.install_update("ghi", StageFile::Text("applied"));
    let rec = fake.path("state/abc");
    fs::create_dir_all(&rec).unwrap();
    fs::write(rec.join("description"), "Fix the uptime rounding\nmore\n").unwrap();
    fs::write(
        rec.join("patched"),
        "fs/proc/uptime.o uptime_proc_show\nkernel/sys.o do_sys_uname\n",
    )
    .unwrap();
    let out = fake.run(VIEW, &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "abc: Fix the uptime rounding\n  uptime_proc_show (fs/proc/uptime.o)\n  do_sys_uname (kernel/sys.o)\nghi: no description available\n"
    );
    let out = fake.run(VIEW, &["-q"]);
    assert_eq!(out.stdout, "abc\nghi\n");

    let out = fake.run(VIEW, &["--id=abc"]);
    assert!(
        out.stdout
            .starts_with("Ksplice update abc is present in the kernel and is applied.\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("do_sys_uname"));
    let out = fake.run(VIEW, &["--id", "zzz"]);
    assert_eq!(out.code, Some(0));
    assert_eq!(
        out.stdout,
        "Ksplice update zzz is not present in the kernel.\n"
    );

    let empty = Fake::new("viewempty");
    let out = empty.run(VIEW, &[]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), ""));
}

#[test]
fn view_json_has_what_the_text_shows() {
    let fake = Fake::new("viewjson");
    fake.install_update("abc", StageFile::Text("applied"));
    fake.install_update("def", StageFile::Text("reversed"));
    let rec = fake.path("state/abc");
    fs::create_dir_all(&rec).unwrap();
    fs::write(rec.join("description"), "Fix the uptime rounding\nmore\n").unwrap();
    fs::write(rec.join("patched"), "fs/proc/uptime.o uptime_proc_show\n").unwrap();
    fs::write(rec.join("patch"), "--- a/x\n+++ b/x\n").unwrap();
    let json = |args: &[&str]| -> serde_json::Value {
        let out = fake.run(VIEW, args);
        assert_eq!(out.code, Some(0), "{out:?}");
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
    };
    let list = json(&["--json"]);
    assert_eq!(
        list,
        serde_json::json!([{
            "kid": "abc",
            "stage": "applied",
            "installed": false,
            "description": "Fix the uptime rounding\nmore\n",
            "patched": [{"object": "fs/proc/uptime.o", "function": "uptime_proc_show"}],
        }]),
        "only the applied update, without the patch"
    );
    assert_eq!(
        json(&["--json", "-q"]),
        serde_json::json!([{"kid": "abc", "stage": "applied", "installed": false}])
    );
    let one = json(&["--json", "-v", "--id=ksplice-abc"]);
    assert_eq!(one["kid"], "abc");
    assert_eq!(one["present"], true);
    assert_eq!(one["patch"], "--- a/x\n+++ b/x\n");
    assert_eq!(json(&["--json", "--id=def"])["stage"], "reversed");
    assert_eq!(
        json(&["--json", "--id=zzz"]),
        serde_json::json!({"kid": "zzz", "present": false})
    );
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let file = json(&["--json", s(&tgz)]);
    assert_eq!(file["kid"], "abc");
    assert_eq!(file["kernel"]["release"], RELEASE);
    assert_eq!(file["patched"].as_array().map(Vec::len), Some(2), "{file}");
    let out = fake.run(VIEW, &["--json", "--id=a/b"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stdout, "", "errors stay on stderr");
}

#[test]
fn view_into_a_closed_pipe_ends_quietly() {
    // `ksplice-view | grep -q ID`: the reader leaves after its first line.
    let fake = Fake::new("viewpipe");
    for i in 0..200 {
        fake.install_update(&format!("u{i}"), StageFile::Text("applied"));
    }
    let mut c = Command::new(VIEW);
    c.current_dir(&fake.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &fake.env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(13),
        "{:?}: {stderr}",
        out.status
    );
}

#[test]
fn view_describes_a_tarball_without_the_kernel() {
    let fake = Fake::new("viewfile");
    let tgz = write_update(&fake, &["vmlinux"], |_| {});
    let out = fake.run(VIEW, &[s(&tgz)]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "Ksplice update abc: Fix the uptime rounding\nBuilt for kernel {RELEASE} ({VERSION})\nChanged functions:\n  uptime_proc_show (fs/proc/uptime.o)\n  uptime_helper (fs/proc/uptime.o)\n"
        )
    );
    let out = fake.run(VIEW, &["-v", &format!("--file={}", s(&tgz))]);
    assert!(
        out.stdout.contains("+++ b/fs/proc/uptime.c"),
        "{}",
        out.stdout
    );
    assert!(fake.log().is_empty());

    let bad = fake.path("bad.tar.gz");
    fs::write(&bad, gz(b"junk")).unwrap();
    let out = fake.run(VIEW, &[s(&bad)]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .starts_with(&format!("ksplice-view: {}: ", s(&bad)))
    );
}

// ---------------------------------------------------------------- options

#[test]
fn help_version_and_usage() {
    for tool in [APPLY, UNDO, VIEW] {
        let out = Command::new(tool).arg("--help").output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Usage:") && text.contains("--raw-errors"),
            "{text}"
        );
        let out = Command::new(tool).arg("--version").output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let out = Command::new(tool).arg("--api-version").output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "2\n");
        let out = Command::new(tool).arg("--no-such-option").output().unwrap();
        assert_eq!(out.status.code(), Some(1));
    }
    let out = Command::new(APPLY).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for want in ["--partial", "--debugfile", "Exit status", "130"] {
        assert!(text.contains(want), "{want}");
    }
    let out = Command::new(APPLY).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "an update is required");
}
