//! The builds with Makefile.ksplice: revert (what a previous run left),
//! snap (the tree as found, with function and data sections), diff (after
//! the patch: the changed objects and their reports). Every command runs in
//! its own process group, its output in the build log, under the numbered
//! progress lines of [`Stages`].

use super::Options;
use super::context::Ctx;
use super::tree::find_files;
use crate::engine::report::Report;
use crate::util::interrupt::{Interrupted, check as check_interrupt, interrupted};
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `-j` given to make: `-j`, else `CONCURRENCY_LEVEL` (as the original);
/// 0 is make's `-j` without a number (no limit).
pub(super) fn make_jobs(o: &Options) -> Option<usize> {
    o.jobs.or_else(|| {
        std::env::var("CONCURRENCY_LEVEL")
            .ok()
            .and_then(|v| v.parse().ok())
    })
}

/// The make command line of every Makefile.ksplice step (without the mode).
pub(super) fn make_args(
    o: &Options,
    jobs: Option<usize>,
    tree: &Path,
    objtree: &Path,
    data: &Path,
    flags: &[String],
) -> Vec<String> {
    let mut make = vec!["make".to_string(), "-rR".to_string()];
    match jobs {
        Some(0) => make.push("-j".into()),
        Some(j) => make.push(format!("-j{j}")),
        None => {}
    }
    if o.verbose >= 2 {
        make.push("V=1".into());
    } else if o.verbose < 0 {
        make.push("-s".into());
    }
    make.extend([
        "-C".to_string(),
        tree.display().to_string(),
        "-f".into(),
        data.join("Makefile.ksplice").display().to_string(),
    ]);
    if objtree != tree {
        make.push(format!("O={}", objtree.display()));
    }
    make.extend(flags.iter().cloned());
    if o.build_modules {
        make.push("KSPLICE_BUILD_MODULES=1".into());
    }
    make
}

/// A Makefile.ksplice step: the make command line plus `extra`, with the
/// environment every step gets.
fn make_cmd(ctx: &Ctx, extra: &[String]) -> Command {
    let make = &ctx.make;
    let mut c = Command::new(&make[0]);
    c.args(&make[1..]).args(extra);
    c.env("KSPLICE_VERBOSE", ctx.o.verbose.max(0).to_string())
        .env("KSPLICE_CONFIG_DIR", &ctx.config)
        .env("KSPLICE_KID", &ctx.kid)
        .env("KSPLICE_OBJ", &ctx.ksplice_obj);
    if ctx.o.allow_data_change {
        c.env("KSPLICE_ALLOW_DATA_CHANGE", "1");
    } else {
        // Rewrites in place are accepted or refused by rewrite_check.
        c.env("KSPLICE_DATA_IN_PLACE", "1");
    }
    c
}

/// Stage: reverts what a previous run left (`KSPLICE_MODE=revert`).
pub(super) fn revert(ctx: &mut Ctx) -> Result<()> {
    let mut revert = vec!["KSPLICE_MODE=revert".to_string()];
    if ctx.o.series {
        revert.push("KSPLICE_SERIES=1".into());
    }
    if !ctx.stages.run(&mut make_cmd(ctx, &revert))?.success() {
        bail!(
            "reverting the objects of a previous run failed:\n{}",
            ctx.stages.tail(20)
        );
    }
    Ok(())
}

/// The config directory's `.config` into the objtree, unless it has one.
pub(super) fn copy_config(ctx: &Ctx) -> Result<()> {
    if ctx.config.join(".config").is_file() && !ctx.objtree.join(".config").is_file() {
        fs::copy(ctx.config.join(".config"), ctx.objtree.join(".config"))?;
    }
    Ok(())
}

/// Stage: the snap build (`KSPLICE_MODE=snap`).
pub(super) fn snap(ctx: &mut Ctx) -> Result<()> {
    if !ctx
        .stages
        .run(&mut make_cmd(ctx, &["KSPLICE_MODE=snap".to_string()]))?
        .success()
    {
        bail!("the snap build failed:\n{}", ctx.stages.tail(30));
    }
    Ok(())
}

/// Stage: the diff build (`KSPLICE_MODE=diff`) into the run's kmodsrc
/// directory. When it fails, the sources are restored and the reason is
/// the first refusal of a report, else the build log.
pub(super) fn diff(ctx: &mut Ctx) -> Result<()> {
    fs::create_dir_all(&ctx.kmodsrc)?;
    let o = ctx.o;
    let mut diff = vec![
        "KSPLICE_MODE=diff".to_string(),
        format!("KSPLICE_KMODSRC={}", ctx.kmodsrc.display()),
    ];
    if !o.extra_match.is_empty() {
        diff.push(format!("KSPLICE_EXTRA_MATCH={}", o.extra_match.join(" ")));
    }
    if !o.exclude_match.is_empty() {
        diff.push(format!(
            "KSPLICE_EXCLUDE_MATCH={}",
            o.exclude_match.join(" ")
        ));
    }
    if !o.only_targets.is_empty() {
        diff.push(format!("KSPLICE_ONLY_TARGETS={}", o.only_targets.join(" ")));
    }
    let status = ctx.stages.run(&mut make_cmd(ctx, &diff))?;
    if !status.success() {
        ctx.guard.restore()?;
        let reports = collect_reports(&ctx.objtree)?;
        let refused: Vec<String> = reports.iter().flat_map(|(_, r)| refusals(r)).collect();
        if let Some(why) = refusing(&refused) {
            bail!("{why}");
        }
        bail!(
            "applying the patch breaks the kernel build:\n{}",
            ctx.stages.tail(30)
        );
    }
    Ok(())
}

/// Every `OBJ.KSPLICE_report.json` of this run: (object path, JSON text).
pub(super) fn collect_reports(objtree: &Path) -> Result<Vec<(PathBuf, String)>> {
    let suffix = ".KSPLICE_report.json";
    find_files(objtree, suffix)?
        .into_iter()
        .map(|rel| {
            let p = objtree.join(&rel);
            let text =
                fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
            let obj = PathBuf::from(p.to_string_lossy().trim_end_matches(suffix));
            Ok((obj, text))
        })
        .collect()
}

/// Why a run with no changed target has nothing to patch: the boot-time
/// functions the reports name, else the objects the diff build rebuilt with
/// different bytes (each keeps its `.KSPLICE_pre`), which then differ only
/// where the running kernel needs no change, else the patched sources.
pub(super) fn nothing_to_patch(
    objtree: &Path,
    reports: &[(PathBuf, String)],
    sources: &[&Path],
) -> Result<String> {
    let boot: Vec<String> = parsed(reports)
        .flat_map(|r| {
            let object = r.object.clone();
            r.boot_only
                .into_iter()
                .map(move |e| format!("{object}: {}", e.name))
        })
        .collect();
    if !boot.is_empty() {
        return Ok(format!(
            "nothing to patch at run time: only boot-time (__init) code changed ({}); it ran when the kernel booted and is not patched",
            boot.join(", ")
        ));
    }
    let mut rebuilt: Vec<String> = find_files(objtree, ".KSPLICE_pre")?
        .into_iter()
        .map(|rel| {
            let s = rel.to_string_lossy();
            s.trim_end_matches(".KSPLICE_pre").to_string()
        })
        .collect();
    rebuilt.sort();
    if rebuilt.is_empty() {
        let files: Vec<String> = sources.iter().map(|p| p.display().to_string()).collect();
        return Ok(format!(
            "nothing to patch at run time: the patched sources ({}) compile to the same object files as before (a change the compiler turns into the same code, comments, or code this config does not build)",
            files.join(", ")
        ));
    }
    Ok(format!(
        "nothing to patch at run time: {} changed only in boot-time code and data, debug information or layout, not in any code or data the running kernel uses",
        rebuilt.join(", ")
    ))
}

/// The reports that parse.
fn parsed(reports: &[(PathBuf, String)]) -> impl Iterator<Item = Report> + '_ {
    reports
        .iter()
        .filter_map(|(_, json)| Report::from_json(json).ok())
}

/// ksplice-create's notes on what an update does not cover: changed
/// boot-time functions (not patched), and replaced `noinstr` functions,
/// whose entry is rewritten while NMI and machine-check handlers, which
/// stop_machine does not stop, may run them.
pub(super) fn notes(reports: &[(PathBuf, String)]) -> Vec<String> {
    let mut notes = Vec::new();
    for report in parsed(reports) {
        for e in &report.boot_only {
            notes.push(format!(
                "note: {}: {} is boot-time (__init) code: it ran when the kernel booted and is not patched",
                report.object, e.name
            ));
        }
        let noinstr = report.patched_functions.iter();
        for e in noinstr.filter(|e| e.section.starts_with(".noinstr.text")) {
            notes.push(format!(
                "note: {}: {} is noinstr (entry, NMI or machine-check code): it is replaced like any other function, with its jump written while every CPU is stopped; an NMI or machine check that runs it during that write (a few microseconds) is not covered",
                report.object, e.name
            ));
        }
    }
    notes
}

/// The error of a run refused for `reasons` (the first, and how many more),
/// or None when there are none.
pub(super) fn refusing(reasons: &[String]) -> Option<String> {
    let first = reasons.first()?;
    Some(match reasons.len() {
        1 => format!("refusing the patch: {first}"),
        n => format!("refusing the patch: {first} (and {} more)", n - 1),
    })
}

/// The refusals a report names, as one-line reasons.
fn refusals(json: &str) -> Vec<String> {
    let report = match Report::from_json(json) {
        Ok(r) => r,
        // The build failed anyway; an unreadable report adds no reason.
        Err(_) => return Vec::new(),
    };
    report
        .refused
        .iter()
        .map(|e| {
            format!(
                "{}: writable data {} in section {} changed ({}); it cannot take effect by replacing code (--allow-data-change ignores it)",
                report.object,
                e.name,
                e.section,
                e.reason.as_deref().unwrap_or("changed")
            )
        })
        .collect()
}

// ---------------------------------------------------------------- progress and commands

/// Progress and logging of the stages.
pub(super) struct Stages {
    /// Verbosity: -1 quiet, 0 default, 1 verbose, 2 debug.
    pub(super) verbose: i32,
    /// The build log (the commands' output unless verbose).
    pub(super) log: PathBuf,
    /// How many stages this run has.
    pub(super) total: usize,
    /// The stages started so far.
    pub(super) n: usize,
}

impl Stages {
    /// Prints `[n/total] what...` and starts timing the stage.
    pub(super) fn start(&mut self, what: &str) -> Instant {
        self.n += 1;
        if self.verbose >= 0 {
            println!("[{}/{}] {what}...", self.n, self.total);
        }
        Instant::now()
    }

    /// Prints how long the stage took.
    pub(super) fn done(&self, t: Instant) {
        if self.verbose >= 0 {
            println!("      done in {:.1} s", t.elapsed().as_secs_f64());
        }
    }

    /// Runs a command in its own process group; output goes to the log (and
    /// to the terminal when verbose). Interruption kills the whole group.
    pub(super) fn run(&self, cmd: &mut Command) -> Result<ExitStatus> {
        use std::os::unix::process::CommandExt;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        if self.verbose >= 1 {
            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        } else {
            cmd.stdout(log.try_clone()?).stderr(log);
        }
        cmd.process_group(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
        loop {
            if let Some(st) = child.try_wait()? {
                if interrupted() {
                    bail!(Interrupted);
                }
                return Ok(st);
            }
            if interrupted() {
                kill_groups(&mut [child]);
                bail!(Interrupted);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `cmds`, at most `jobs` at a time, each as [`Stages::run`] does;
    /// returns whether each succeeded. Interruption (or a command that
    /// cannot be started) kills the running ones.
    pub(super) fn run_all(&self, cmds: Vec<Command>, jobs: usize) -> Result<Vec<bool>> {
        use std::os::unix::process::CommandExt;
        let mut ok = vec![false; cmds.len()];
        let mut pending = cmds.into_iter().enumerate();
        let mut running: Vec<(usize, std::process::Child)> = Vec::new();
        loop {
            while running.len() < jobs.max(1) {
                let Some((i, mut cmd)) = pending.next() else {
                    break;
                };
                let spawned = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .and_then(|log| {
                        if self.verbose >= 1 {
                            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
                        } else {
                            cmd.stdout(log.try_clone()?).stderr(log);
                        }
                        cmd.process_group(0).spawn()
                    });
                match spawned {
                    Ok(child) => running.push((i, child)),
                    Err(e) => {
                        let mut children: Vec<_> = running.into_iter().map(|r| r.1).collect();
                        kill_groups(&mut children);
                        bail!("cannot run {:?}: {e}", cmd.get_program());
                    }
                }
            }
            if running.is_empty() {
                break;
            }
            if interrupted() {
                let mut children: Vec<_> = running.into_iter().map(|r| r.1).collect();
                kill_groups(&mut children);
                bail!(Interrupted);
            }
            let mut still = Vec::new();
            for (i, mut child) in running {
                match child.try_wait() {
                    Ok(Some(st)) => ok[i] = st.success(),
                    Ok(None) => still.push((i, child)),
                    Err(_) => {}
                }
            }
            running = still;
            std::thread::sleep(Duration::from_millis(20));
        }
        check_interrupt()?;
        Ok(ok)
    }

    /// The last lines of the log, for a failure message.
    pub(super) fn tail(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Kills each child's process group (TERM, then KILL) and reaps the children.
fn kill_groups(children: &mut [std::process::Child]) {
    for sig in ["TERM", "KILL"] {
        for child in children.iter() {
            let _ = Command::new("kill")
                .args(["-s", sig, "--"])
                .arg(format!("-{}", child.id()))
                .status();
        }
        if sig == "TERM" {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    for child in children.iter_mut() {
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_name_noinstr_and_boot_time_functions() {
        let r = "{\"object\": \"arch/x86/kernel/cpu/mce/severity.o\", \"patched_functions\": [{\"name\": \"error_context\", \"section\": \".noinstr.text\"}, {\"name\": \"mce_severity_amd\", \"section\": \".text.mce_severity_amd\"}], \"boot_only\": [{\"name\": \"mcheck_init\", \"section\": \".init.text\"}]}";
        let notes = notes(&[(PathBuf::from("severity.o"), r.to_string())]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("mcheck_init is boot-time"));
        assert!(notes[1].contains("error_context is noinstr"));
        assert!(super::notes(&[(PathBuf::from("x.o"), "junk".to_string())]).is_empty());
    }

    #[test]
    fn nothing_to_patch_says_why() {
        let dir = std::env::temp_dir().join(format!("ksplice-ntp-{}", std::process::id()));
        fs::create_dir_all(dir.join("security/selinux")).unwrap();
        let src = Path::new("security/selinux/avc.c");
        let none = nothing_to_patch(&dir, &[], &[src]).unwrap();
        assert!(
            none.contains("(security/selinux/avc.c) compile to the same object files"),
            "{none}"
        );
        fs::write(dir.join("security/selinux/avc.o.KSPLICE_pre"), b"").unwrap();
        let one = nothing_to_patch(&dir, &[], &[src]).unwrap();
        assert!(
            one.contains("security/selinux/avc.o changed only in"),
            "{one}"
        );
        let r = "{\"object\": \"security/selinux/hooks.o\", \"boot_only\": [{\"name\": \"selinux_init\"}]}";
        let boot = nothing_to_patch(&dir, &[(dir.join("hooks.o"), r.to_string())], &[src]).unwrap();
        assert!(
            boot.contains(
                "only boot-time (__init) code changed (security/selinux/hooks.o: selinux_init)"
            ),
            "{boot}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refusal_lines_from_a_report() {
        let r = "{\n  \"object\": \"kernel/printk/printk.o\",\n  \"refused\": [\n    {\"name\": \"console_printk\", \"section\": \".data.console_printk\", \"reason\": \"differing bytes at offset 0x8\", \"offset\": 8}\n  ]\n}\n";
        let v = refusals(r);
        assert_eq!(v.len(), 1);
        assert!(v[0].contains("console_printk") && v[0].contains("kernel/printk/printk.o"));
        assert!(v[0].contains(".data.console_printk") && v[0].contains("offset 0x8"));
        assert!(refusals("{\"object\": \"a.o\"}").is_empty());
        assert!(refusals("not json").is_empty());
    }

    #[test]
    fn jobs_zero_is_make_j_without_a_limit() {
        let o = Options::default();
        let (t, d) = (Path::new("/t"), Path::new("/d"));
        let args = |j| make_args(&o, j, t, t, d, &[]);
        assert_eq!(args(Some(0))[2], "-j");
        assert_eq!(args(Some(3))[2], "-j3");
        assert!(!args(None).iter().any(|a| a.starts_with("-j")));
    }
}
