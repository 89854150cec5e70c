//! Kill `ksplice-obj` with SIGKILL at random moments and check that no
//! protocol file is ever left partially written.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::fuzz::XorShift;
use support::*;

/// The seed of a run: `KSPLICE_KILL_SEED`, or else from the clock.
fn kill_seed() -> u64 {
    match std::env::var("KSPLICE_KILL_SEED") {
        Ok(s) => s.parse().expect("KSPLICE_KILL_SEED must be a u64"),
        Err(_) => {
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            t ^ ((std::process::id() as u64) << 32) ^ 0x9E37_79B9_7F4A_7C15
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// old_code big.o.KSPLICE_old_code
    OldCode,
    /// snap sd.o.KSPLICE (with stale files around)
    Snap,
    /// diff sd.o.KSPLICE with an identical _pre
    DiffIdentical,
    /// diff dd.o.KSPLICE with a differing _pre (new and old code, report, then the marker)
    DiffDiffering,
    /// combine cmb.o.KSPLICE in1.o.KSPLICE_old_code in2.o.KSPLICE_old_code
    Combine,
}

const OPS: [Op; 5] = [
    Op::OldCode,
    Op::Snap,
    Op::DiffIdentical,
    Op::DiffDiffering,
    Op::Combine,
];

impl Op {
    fn args(self) -> &'static [&'static str] {
        match self {
            Op::OldCode => &["old_code", "big.o.KSPLICE_old_code"],
            Op::Snap => &["snap", "sd.o.KSPLICE"],
            Op::DiffIdentical => &["diff", "sd.o.KSPLICE"],
            Op::DiffDiffering => &["diff", "dd.o.KSPLICE"],
            Op::Combine => &[
                "combine",
                "cmb.o.KSPLICE",
                "in1.o.KSPLICE_old_code",
                "in2.o.KSPLICE_old_code",
            ],
        }
    }

    fn expect_success(self) -> bool {
        true
    }
}

/// Files that may legitimately exist in the test directory.
const KNOWN: &[&str] = &[
    "big.c",
    "big.o",
    "alt.c",
    "alt.o",
    "sd.o",
    "dd.o",
    "in1.o.KSPLICE_old_code",
    "in2.o.KSPLICE_old_code",
    "cfg",
    "cfg/System.map",
    // outputs
    "big.o.KSPLICE_old_code",
    "sd.o.KSPLICE",
    "sd.o.KSPLICE_pre",
    "sd.o.KSPLICE_old_code",
    "sd.o.KSPLICE_new_code",
    "dd.o.KSPLICE",
    "dd.o.KSPLICE_pre",
    "dd.o.KSPLICE_new_code",
    "dd.o.KSPLICE_old_code",
    "dd.o.KSPLICE_report.json",
    "cmb.o.KSPLICE",
    "cmb.o.KSPLICE_old_code",
    "cmb.o.KSPLICE_new_code",
];

struct Refs {
    big: Vec<u8>,
    alt: Vec<u8>,
    old_code: Vec<u8>,
    cmb_marker: Vec<u8>,
    cmb_old: Vec<u8>,
    cmb_new: Option<Vec<u8>>,
    dd_outputs: Vec<(&'static str, Vec<u8>)>,
}

fn spawn(d: &TestDir, op: Op, cfg: &str) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(op.args())
        .current_dir(&d.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for k in ["LD", "KSPLICE_VERBOSE", "KSPLICE_KID"] {
        cmd.env_remove(k);
    }
    cmd.env("KSPLICE_CONFIG_DIR", cfg);
    cmd.spawn().expect("cannot spawn ksplice-obj")
}

fn read_opt(d: &TestDir, rel: &str) -> Option<Vec<u8>> {
    match fs::read(d.join(rel)) {
        Ok(v) => Some(v),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("cannot read {rel}: {e}"),
    }
}

fn remove_opt(d: &TestDir, rel: &str) {
    match fs::remove_file(d.join(rel)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot remove {rel}: {e}"),
    }
}

/// Wait until no process has its working directory in `dir` (e.g. an `ld`
/// orphaned by killing its parent), so iterations do not interfere.
fn wait_for_orphans(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut busy = Vec::new();
        if let Ok(rd) = fs::read_dir("/proc") {
            for e in rd.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if !name.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                if let Ok(cwd) = fs::read_link(e.path().join("cwd"))
                    && cwd.starts_with(dir)
                {
                    busy.push(name.into_owned());
                }
            }
        }
        if busy.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes still running in {}: {busy:?}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Set up the state an operation starts from.
fn prepare(d: &TestDir, op: Op, refs: &Refs, rng: &mut XorShift) {
    match op {
        Op::OldCode => {
            // Either start from nothing or overwrite a complete previous output.
            if rng.below(2) == 0 {
                remove_opt(d, "big.o.KSPLICE_old_code");
            }
        }
        Op::Snap => {
            match rng.below(3) {
                0 => remove_opt(d, "sd.o.KSPLICE"),
                1 => d.write("sd.o.KSPLICE", b""),
                _ => d.write("sd.o.KSPLICE", b"1\n"),
            }
            // Stale, but complete, files that snap has to remove.
            d.write("sd.o.KSPLICE_pre", &refs.big);
            d.write("sd.o.KSPLICE_old_code", &refs.old_code);
            d.write("sd.o.KSPLICE_new_code", &refs.big);
        }
        Op::DiffIdentical => {
            match rng.below(3) {
                0 => remove_opt(d, "sd.o.KSPLICE"),
                1 => d.write("sd.o.KSPLICE", b""),
                _ => d.write("sd.o.KSPLICE", b"1\n"),
            }
            remove_opt(d, "sd.o.KSPLICE_old_code");
            remove_opt(d, "sd.o.KSPLICE_new_code");
            d.write("sd.o.KSPLICE_pre", &refs.big);
        }
        Op::DiffDiffering => match rng.below(3) {
            0 => remove_opt(d, "dd.o.KSPLICE"),
            1 => d.write("dd.o.KSPLICE", b""),
            _ => d.write("dd.o.KSPLICE", b"1\n"),
        },
        Op::Combine => {
            if rng.below(2) == 0 {
                remove_opt(d, "cmb.o.KSPLICE");
                remove_opt(d, "cmb.o.KSPLICE_old_code");
                remove_opt(d, "cmb.o.KSPLICE_new_code");
            }
        }
    }
}

fn marker_ok(v: &Option<Vec<u8>>) -> bool {
    match v {
        None => true,
        Some(v) => v.is_empty() || v == b"1\n",
    }
}

fn show(v: &Option<Vec<u8>>) -> String {
    match v {
        None => "absent".to_string(),
        Some(v) if v.len() <= 16 => format!("{:?}", String::from_utf8_lossy(v)),
        Some(v) => format!("{} bytes", v.len()),
    }
}

/// Check every invariant after a (possibly killed) run of `op`.
/// `completed` is `Some(status)` when the process exited on its own.
fn check(d: &TestDir, op: Op, refs: &Refs, completed: Option<ExitStatus>, ctx: &str) {
    // Markers: absent, empty or "1\n", whatever happened.
    for m in ["sd.o.KSPLICE", "dd.o.KSPLICE", "cmb.o.KSPLICE"] {
        let v = read_opt(d, m);
        assert!(marker_ok(&v), "{ctx}: marker {m} is {}", show(&v));
    }
    // Old code of big.o: absent or the complete reference.
    let v = read_opt(d, "big.o.KSPLICE_old_code");
    assert!(
        v.is_none() || v.as_deref() == Some(&refs.old_code[..]),
        "{ctx}: big.o.KSPLICE_old_code is partial or wrong ({} vs reference {} bytes)",
        show(&v),
        refs.old_code.len()
    );
    // Stale complete files of sd.o: absent or intact.
    for (f, want) in [
        ("sd.o.KSPLICE_pre", &refs.big),
        ("sd.o.KSPLICE_old_code", &refs.old_code),
        ("sd.o.KSPLICE_new_code", &refs.big),
    ] {
        let v = read_opt(d, f);
        assert!(
            v.is_none() || v.as_ref() == Some(want),
            "{ctx}: {f} is {} (expected absent or intact)",
            show(&v)
        );
    }
    // The differing _pre must never be touched, nor any input.
    assert_eq!(
        read_opt(d, "dd.o.KSPLICE_pre").as_ref(),
        Some(&refs.alt),
        "{ctx}: dd.o.KSPLICE_pre was modified"
    );
    for (f, want) in [
        ("big.o", &refs.big),
        ("sd.o", &refs.big),
        ("dd.o", &refs.big),
        ("in1.o.KSPLICE_old_code", &refs.big),
        ("in2.o.KSPLICE_old_code", &refs.alt),
    ] {
        assert_eq!(
            read_opt(d, f).as_ref(),
            Some(want),
            "{ctx}: input {f} was modified"
        );
    }
    // Combined outputs: absent or complete.
    let m = read_opt(d, "cmb.o.KSPLICE");
    assert!(
        m.is_none() || m.as_deref() == Some(&refs.cmb_marker[..]),
        "{ctx}: cmb.o.KSPLICE is {}",
        show(&m)
    );
    let v = read_opt(d, "cmb.o.KSPLICE_old_code");
    assert!(
        v.is_none() || v.as_deref() == Some(&refs.cmb_old[..]),
        "{ctx}: cmb.o.KSPLICE_old_code is partial or wrong ({} vs reference {} bytes)",
        show(&v),
        refs.cmb_old.len()
    );
    for (f, want) in &refs.dd_outputs {
        let v = read_opt(d, f);
        assert!(
            v.is_none() || v.as_ref() == Some(want),
            "{ctx}: {f} is {} (expected absent or the complete reference)",
            show(&v)
        );
    }
    let v = read_opt(d, "cmb.o.KSPLICE_new_code");
    assert!(
        v.is_none() || v == refs.cmb_new,
        "{ctx}: cmb.o.KSPLICE_new_code is {} (reference {})",
        show(&v),
        show(&refs.cmb_new)
    );

    // A run that finished on its own must have done its whole job.
    if let Some(status) = completed {
        assert_eq!(
            status.success(),
            op.expect_success(),
            "{ctx}: unexpected exit status {status:?}"
        );
        match op {
            Op::OldCode => assert!(read_opt(d, "big.o.KSPLICE_old_code").is_some()),
            Op::Snap => {
                assert_eq!(read_opt(d, "sd.o.KSPLICE"), Some(vec![]), "{ctx}");
                assert!(read_opt(d, "sd.o.KSPLICE_pre").is_none(), "{ctx}");
                assert!(read_opt(d, "sd.o.KSPLICE_old_code").is_none(), "{ctx}");
                assert!(read_opt(d, "sd.o.KSPLICE_new_code").is_none(), "{ctx}");
            }
            Op::DiffIdentical => {
                assert_eq!(read_opt(d, "sd.o.KSPLICE"), Some(vec![]), "{ctx}");
                assert!(read_opt(d, "sd.o.KSPLICE_pre").is_none(), "{ctx}");
            }
            Op::DiffDiffering => {
                assert_eq!(read_opt(d, "dd.o.KSPLICE"), Some(b"1\n".to_vec()), "{ctx}");
                for (f, _) in &refs.dd_outputs {
                    assert!(read_opt(d, f).is_some(), "{ctx}: {f} missing");
                }
            }
            Op::Combine => {
                assert_eq!(read_opt(d, "cmb.o.KSPLICE"), Some(refs.cmb_marker.clone()));
                assert_eq!(
                    read_opt(d, "cmb.o.KSPLICE_old_code"),
                    Some(refs.cmb_old.clone())
                );
            }
        }
    }
}

/// Remove leftover temporary files, checking that none of them carries a
/// protocol name. Returns how many were removed.
fn sweep_leftovers(d: &TestDir, ctx: &str) -> usize {
    let known: BTreeSet<&str> = KNOWN.iter().copied().collect();
    let mut n = 0;
    for (rel, v) in d.snapshot() {
        if known.contains(rel.as_str()) {
            continue;
        }
        assert!(
            !is_protocol_name(&rel),
            "{ctx}: unexpected file with a protocol name: {rel}"
        );
        if v.is_some() {
            fs::remove_file(d.join(&rel)).unwrap();
        } else {
            fs::remove_dir_all(d.join(&rel)).unwrap();
        }
        n += 1;
    }
    n
}

fn timed_run(d: &TestDir, op: Op, cfg: &str) -> (ExitStatus, Duration) {
    let t = Instant::now();
    let status = spawn(d, op, cfg).wait().unwrap();
    (status, t.elapsed())
}

#[test]
fn sigkill_never_leaves_partial_outputs() {
    let seed = kill_seed();
    let mut rng = XorShift::new(seed);
    eprintln!("kill_atomic seed: {seed} (set KSPLICE_KILL_SEED to reproduce)");

    let d = TestDir::new("kill_atomic");
    let cfg = make_config_dir(&d, "cfg").to_str().unwrap().to_string();
    d.compile(&many_functions_c("big", 300), "big.o");
    d.compile(&many_functions_c("alt", 300), "alt.o");
    let big = d.read("big.o");
    let alt = d.read("alt.o");
    assert_ne!(big, alt);
    d.write("sd.o", &big);
    d.write("dd.o", &big);
    d.write("dd.o.KSPLICE_pre", &alt);
    d.write("in1.o.KSPLICE_old_code", &big);
    d.write("in2.o.KSPLICE_old_code", &alt);

    // References from uninterrupted runs, and the duration of each operation.
    let mut durations = Vec::new();
    let (st, dur) = timed_run(&d, Op::OldCode, &cfg);
    assert!(st.success(), "uninterrupted old_code failed: {st:?}");
    let old_code = d.read("big.o.KSPLICE_old_code");
    assert_eq!(&old_code[..4], b"\x7fELF");
    durations.push(dur);
    let (st, dur) = timed_run(&d, Op::Combine, &cfg);
    assert!(st.success(), "uninterrupted combine failed: {st:?}");
    durations.push(dur);
    let cmb_marker = d.read("cmb.o.KSPLICE");
    assert_eq!(cmb_marker, b"1\n");
    let cmb_old = d.read("cmb.o.KSPLICE_old_code");
    let cmb_new = read_opt(&d, "cmb.o.KSPLICE_new_code");
    let (st, _) = timed_run(&d, Op::DiffDiffering, &cfg);
    assert!(
        st.success(),
        "uninterrupted diff of a changed object failed: {st:?}"
    );
    let dd_outputs = [
        "dd.o.KSPLICE_new_code",
        "dd.o.KSPLICE_old_code",
        "dd.o.KSPLICE_report.json",
    ]
    .into_iter()
    .map(|f| (f, d.read(f)))
    .collect();
    let refs = Refs {
        dd_outputs,
        big,
        alt,
        old_code,
        cmb_marker,
        cmb_old,
        cmb_new,
    };
    let dur_of = |op: Op, d: &TestDir, refs: &Refs, rng: &mut XorShift| -> Duration {
        // Measure the three remaining operations from their prepared state.
        prepare(d, op, refs, rng);
        let (st, dur) = timed_run(d, op, &cfg);
        check(d, op, refs, Some(st), &format!("reference run of {op:?}"));
        dur
    };
    let mut durs = [Duration::ZERO; 5];
    durs[0] = durations[0];
    durs[4] = durations[1];
    durs[1] = dur_of(Op::Snap, &d, &refs, &mut rng);
    durs[2] = dur_of(Op::DiffIdentical, &d, &refs, &mut rng);
    durs[3] = dur_of(Op::DiffDiffering, &d, &refs, &mut rng);
    eprintln!("durations of one full run: {durs:?}");
    check(&d, Op::OldCode, &refs, None, "after reference runs");
    assert_eq!(sweep_leftovers(&d, "after reference runs"), 0);

    const ITERATIONS: usize = 300;
    let mut killed = 0usize;
    let mut finished = 0usize;
    let mut leftovers = 0usize;
    let start = Instant::now();
    for i in 0..ITERATIONS {
        let idx = i % OPS.len();
        let op = OPS[idx];
        prepare(&d, op, &refs, &mut rng);
        let max = durs[idx].as_nanos() as u64;
        let delay = Duration::from_nanos(rng.next() % (max + 1));
        let mut child = spawn(&d, op, &cfg);
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let completed = {
            use std::os::unix::process::ExitStatusExt;
            if status.signal() == Some(9) {
                killed += 1;
                None
            } else {
                finished += 1;
                Some(status)
            }
        };
        wait_for_orphans(&d.path);
        let ctx = format!("iteration {i} ({op:?}, killed after {delay:?}, seed {seed})");
        check(&d, op, &refs, completed, &ctx);
        leftovers += sweep_leftovers(&d, &ctx);
    }
    eprintln!(
        "{ITERATIONS} iterations in {:?}: {killed} killed, {finished} finished first, \
         {leftovers} leftover temporary files",
        start.elapsed()
    );

    // Final uninterrupted runs must succeed and reproduce the references.
    for op in OPS {
        prepare(&d, op, &refs, &mut rng);
        let (st, _) = timed_run(&d, op, &cfg);
        check(&d, op, &refs, Some(st), &format!("final run of {op:?}"));
        assert_eq!(
            sweep_leftovers(&d, "final runs"),
            0,
            "an uninterrupted run of {op:?} left a temporary file"
        );
    }
    assert_eq!(d.read("big.o.KSPLICE_old_code"), refs.old_code);
    assert_eq!(d.read("cmb.o.KSPLICE"), refs.cmb_marker);
    assert_eq!(d.read("cmb.o.KSPLICE_old_code"), refs.cmb_old);
    assert_eq!(read_opt(&d, "cmb.o.KSPLICE_new_code"), refs.cmb_new);
}
