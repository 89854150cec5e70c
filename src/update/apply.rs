//! Applying an update (ksplice-apply).
//!
//! Opens and checks the update, loads its core module, then for each
//! changed target its new-code and old-code modules; with a labels module,
//! asks the core to prepare (`prepare` written to
//! `/sys/kernel/ksplice/<kid>/stage`) and loads it; then asks the core to
//! apply (`apply` written to the stage). On success
//! the old-code modules are unloaded and the update is recorded for
//! ksplice-view and ksplice-undo; on any failure everything loaded is
//! unloaded again, in reverse load order.

use super::cli::{DebugOpts, EXIT_ABORTED, EXIT_ERROR, EXIT_OK};
use super::env::Env;
use super::kernel::{Kernel, Stage};
use super::record::Record;
use super::store::Store;
use super::ui::{Ui, explain_apply};
use crate::package::Update;
use crate::util::interrupt::check as check_interrupt;
use anyhow::{Context, Result, bail};
use std::path::Path;

/// What to apply, and how (the options of ksplice-apply).
#[derive(Debug, Clone, Copy)]
pub struct ApplyOpts<'a> {
    /// The update: its tarball or unpacked directory.
    pub update: &'a Path,
    /// `--partial`: skip the changes to modules that are not loaded.
    pub partial: bool,
    /// `--debug`, `--debugfile`.
    pub debug: &'a DebugOpts,
}

/// Applies an update; returns the exit status ([`EXIT_OK`] when applied
/// or already applied, [`EXIT_ABORTED`] when the kernel refused it), or an
/// error after unloading what was loaded.
pub fn apply(opts: &ApplyOpts, env: Env, ui: &Ui) -> Result<u8> {
    apply_opened(&Update::open(opts.update)?, opts, env, ui)
}

/// [`apply`] of the update `u`, opened from `opts.update`.
fn apply_opened(u: &Update, opts: &ApplyOpts, env: Env, ui: &Ui) -> Result<u8> {
    u.check_kernel(&env.proc_root)
        .with_context(|| opts.update.display().to_string())?;
    check_interrupt()?;
    let k = Kernel {
        env,
        ui: ui.clone(),
    };
    if let Some(code) = check_not_loaded(&k, &u.kid)? {
        return Ok(code);
    }
    if let Some(code) = check_targets(&k, u, opts.partial) {
        return Ok(code);
    }

    ui.progress("Loading modules...");
    let mut loaded = Vec::new();
    let prepared = load(&k, u, &mut loaded).and_then(|()| prepare(&k, &u.kid, opts.partial));
    if let Err(e) = prepared {
        give_up(&k, &u.kid, opts.debug, &loaded);
        return Err(e);
    }

    ui.progress(&format!("Applying Ksplice update {}...", u.kid));
    match load_labels(&k, u, &mut loaded) {
        Ok(true) => {}
        Ok(false) => {
            aborted(&k, &u.kid, opts.debug, &loaded);
            return Ok(EXIT_ABORTED);
        }
        Err(e) => {
            give_up(&k, &u.kid, opts.debug, &loaded);
            return Err(e);
        }
    }
    let written = k.write_attr(&u.kid, "stage", "apply");
    if k.stage(&u.kid).ok().flatten() == Some(Stage::Applied) {
        if opts.debug.wanted() {
            k.save_debug(&u.kid, opts.debug.debugfile.as_deref());
        }
        finish(&k, u, opts.partial);
        return Ok(EXIT_OK);
    }
    if let Err(e) = &written
        && ui.verbose >= 1
    {
        println!("writing apply to the stage failed: {e}");
    }
    aborted(&k, &u.kid, opts.debug, &loaded);
    Ok(EXIT_ABORTED)
}

/// `ksplice-apply --install`: applies the update (a tarball), then keeps it
/// in the store of installed updates for the running kernel, so that
/// `ksplice.service` applies it again at every boot of that kernel
/// ([`apply_installed`]). Nothing is installed when it does not apply.
pub fn install(opts: &ApplyOpts, env: Env, ui: &Ui) -> Result<u8> {
    Store::check_tarball(opts.update)?;
    let (store, release) = Store::running(&env)?;
    let u = Update::open(opts.update)?;
    let code = apply_opened(&u, opts, env, ui)?;
    if code != EXIT_OK {
        return Ok(code);
    }
    let kid = &u.kid;
    let kept = store.install(opts.update, kid, &release)?;
    ui.progress(&format!(
        "Installed Ksplice update {kid} for {release} ({}): applied again at every boot of this kernel by ksplice.service.",
        kept.display()
    ));
    Ok(EXIT_OK)
}

/// `ksplice-apply --all-installed` (what `ksplice.service` runs at boot):
/// applies every update installed for the running kernel, in installation
/// order, going on after one that fails. Returns the worst exit status.
pub fn apply_installed(partial: bool, debug: &DebugOpts, env: Env, ui: &Ui) -> Result<u8> {
    let (store, release) = Store::running(&env)?;
    let installed = store.installed(&release)?;
    if installed.is_empty() {
        ui.progress(&format!("No Ksplice update is installed for {release}."));
        return Ok(EXIT_OK);
    }
    let mut worst = EXIT_OK;
    for i in &installed {
        check_interrupt()?;
        let opts = ApplyOpts {
            update: &i.tarball,
            partial,
            debug,
        };
        let code = apply(&opts, env.clone(), ui).unwrap_or_else(|e| {
            eprintln!("ksplice-apply: installed update {}: {e:#}", i.kid);
            EXIT_ERROR
        });
        if code != EXIT_OK {
            eprintln!(
                "ksplice-apply: installed update {} for {release} was not applied (exit {code})",
                i.kid
            );
        }
        worst = worst.max(code);
    }
    Ok(worst)
}

/// `Some(EXIT_OK)` when the update is already applied; an error when it is
/// loaded but not applied; `None` when it is not in the kernel.
fn check_not_loaded(k: &Kernel, kid: &str) -> Result<Option<u8>> {
    match k.stage(kid)? {
        None => Ok(None),
        Some(Stage::Applied) => {
            k.ui.progress(&format!("Ksplice update {kid} already applied."));
            Ok(Some(EXIT_OK))
        }
        Some(other) => bail!(
            "Ksplice update {kid} is already loaded but not applied (stage {other}); unload its modules first (rmmod {})",
            k.update_modules(kid).join(" ")
        ),
    }
}

/// The targets of `u` (other than vmlinux) that are not loaded.
fn missing_targets<'u>(k: &Kernel, u: &'u Update) -> Vec<&'u str> {
    u.contents
        .changes
        .iter()
        .filter(|c| c.target != "vmlinux" && !k.module_loaded(&c.target))
        .map(|c| c.target.as_str())
        .collect()
}

/// Without `--partial`, `Some(EXIT_ABORTED)` (explained) when a target
/// module is not loaded.
fn check_targets(k: &Kernel, u: &Update, partial: bool) -> Option<u8> {
    let missing = missing_targets(k, u);
    if missing.is_empty() || partial {
        return None;
    }
    k.ui.abort(
        &format!(
            "cannot apply Ksplice update {}: module {} is not loaded",
            u.kid,
            missing.join(", ")
        ),
        "target_not_loaded",
        explain_apply("target_not_loaded"),
        "",
    );
    Some(EXIT_ABORTED)
}

/// The modules of `u` in loading order, as (module, file, what it is): the
/// core, then each change's new-code then old-code module.
pub fn load_order(u: &Update) -> Vec<(&str, &str, String)> {
    let core = &u.contents.core;
    let mut out = vec![(
        core.module.as_str(),
        core.file.as_str(),
        format!("the core module {}", core.module),
    )];
    for c in &u.contents.changes {
        for (module, file, what) in [
            (&c.new_module, &c.new_file, "new"),
            (&c.old_module, &c.old_file, "old"),
        ] {
            let desc = format!("the {what} code module {module} for {}", c.target);
            out.push((module.as_str(), file.as_str(), desc));
        }
    }
    out
}

/// Loads the core (unless loaded) and each change's new then old module;
/// `loaded` gets each module loaded, in order.
fn load(k: &Kernel, u: &Update, loaded: &mut Vec<String>) -> Result<()> {
    for (module, file, what) in load_order(u) {
        if module == u.contents.core.module && k.module_loaded(module) {
            continue;
        }
        check_interrupt()?;
        k.insmod(&u.file(file))
            .with_context(|| format!("cannot load {what}"))?;
        loaded.push(module.to_string());
    }
    check_interrupt()
}

/// Checks the loaded core registered the update, and sets `partial`.
fn prepare(k: &Kernel, kid: &str, partial: bool) -> Result<()> {
    if !k.update_present(kid) {
        bail!(
            "the update's modules are loaded but {} does not exist: the core module did not register the update",
            k.update_dir(kid).display()
        );
    }
    if partial {
        k.write_attr(kid, "partial", "1")
            .with_context(|| format!("{}/partial: cannot write", k.update_dir(kid).display()))?;
    }
    check_interrupt()
}

/// With labels modules: asks the core to prepare (run-pre matching), then
/// loads them; each takes its change's jump labels. False
/// when the core refused to prepare (its abort cause says why).
fn load_labels(k: &Kernel, u: &Update, loaded: &mut Vec<String>) -> Result<bool> {
    if u.contents.labels.is_empty() {
        return Ok(true);
    }
    let written = k.write_attr(&u.kid, "stage", "prepare");
    if k.stage(&u.kid)? != Some(Stage::Prepared) {
        if let Err(e) = written
            && k.ui.verbose >= 1
        {
            println!("writing prepare to the stage failed: {e}");
        }
        return Ok(false);
    }
    for labels in &u.contents.labels {
        check_interrupt()?;
        k.insmod(&u.file(&labels.file))
            .with_context(|| format!("cannot load the labels module {}", labels.module))?;
        loaded.push(labels.module.clone());
    }
    Ok(true)
}

/// Loading failed (an error, not the kernel's refusal): saves the debug
/// trace if wanted, asks the core to drop a prepared match, and unloads
/// what was loaded.
fn give_up(k: &Kernel, kid: &str, debug: &DebugOpts, loaded: &[String]) {
    if k.update_present(kid) {
        if debug.wanted() {
            k.save_debug(kid, debug.debugfile.as_deref());
        }
        let _ = k.write_attr(kid, "stage", "cleanup");
    }
    unload(k, loaded);
}

/// The modules to unload after a failure, in order: reverse load order.
pub fn cleanup_order(loaded: &[String]) -> Vec<&str> {
    loaded.iter().rev().map(String::as_str).collect()
}

/// Unloads `loaded` in reverse order; failures are reported, not fatal.
fn unload(k: &Kernel, loaded: &[String]) {
    for m in cleanup_order(loaded) {
        if let Err(e) = k.rmmod(m) {
            k.ui.warn(&format!("{e:#}"));
        }
    }
}

/// The new code is live: unloads the old-code modules (and with
/// `partial`, the unused new code of targets not loaded) and records the
/// update. Runs to the end even if interrupted.
fn finish(k: &Kernel, u: &Update, partial: bool) {
    for c in &u.contents.changes {
        if k.module_loaded(&c.old_module)
            && let Err(e) = k.rmmod(&c.old_module)
        {
            k.ui.warn(&format!("{e:#}"));
        }
        if partial && c.target != "vmlinux" && !k.module_loaded(&c.target) {
            // Nothing uses the new code of a target that is not loaded
            // (its labels module carries no table).
            let labels = crate::package::names::labels_module(&u.kid, &c.target).0;
            if k.module_loaded(&labels) {
                let _ = k.rmmod(&labels);
            }
            if k.module_refcount(&c.new_module) == Some(0) {
                let _ = k.rmmod(&c.new_module);
            }
        }
    }
    if let Err(e) = Record::save(&k.env.state, u) {
        k.ui.warn(&format!(
            "{e:#} (the update is applied; ksplice-view will not show its description)"
        ));
    }
    k.ui.progress("Done!");
}

/// The kernel refused the update: explains why (the busy tasks for
/// `code_busy`), saves the debug trace if wanted, asks the core to clean
/// up, and unloads what was loaded.
fn aborted(k: &Kernel, kid: &str, debug: &DebugOpts, loaded: &[String]) {
    k.report_abort(
        kid,
        &format!("Ksplice update {kid} was not applied"),
        explain_apply,
        debug,
    );
    if let Err(e) = k.write_attr(kid, "stage", "cleanup") {
        k.ui.warn(&format!(
            "{}/stage: cannot write cleanup: {e}",
            k.update_dir(kid).display()
        ));
    }
    unload(k, loaded);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::testkit::{FakeKernel, KID, quiet_ui};

    fn run(fake: &FakeKernel, update: &Path, partial: bool, debug: &DebugOpts) -> Result<u8> {
        let opts = ApplyOpts {
            update,
            partial,
            debug,
        };
        apply(&opts, fake.env(), &quiet_ui("ksplice-apply"))
    }

    fn kernel(fake: &FakeKernel) -> Kernel {
        Kernel {
            env: fake.env(),
            ui: quiet_ui("ksplice-apply"),
        }
    }

    #[test]
    fn loads_in_order_then_unloads_old_code_and_records() {
        let fake = FakeKernel::new("applied", "ok", "");
        let u = Update::open(&fake.update(&["vmlinux"])).unwrap();
        let k = kernel(&fake);
        let mut loaded = Vec::new();
        load(&k, &u, &mut loaded).unwrap();
        prepare(&k, KID, false).unwrap();
        assert_eq!(k.stage(KID).unwrap(), Some(Stage::Applied));
        // What follows the kernel's applying the update.
        finish(&k, &u, false);
        assert_eq!(
            fake.log(),
            [
                "insmod ksplice_abc",
                "insmod ksplice_abc_vmlinux_new",
                "insmod ksplice_abc_vmlinux_old",
                "rmmod ksplice_abc_vmlinux_old",
            ]
        );
        assert_eq!(loaded.len(), 3);
        assert!(fake.path("state").join(KID).join("description").is_file());
    }

    /// The fake update as a tarball (`ksplice-abc.tar.gz`).
    fn tarball(fake: &FakeKernel) -> std::path::PathBuf {
        let dir = fake.update(&["vmlinux"]);
        let out = fake.dir.join(format!("ksplice-{KID}.tar.gz"));
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&out).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        b.append_dir_all(format!("ksplice-{KID}"), &dir).unwrap();
        b.into_inner().unwrap().finish().unwrap();
        out
    }

    #[test]
    fn install_keeps_what_applied_for_the_running_release() {
        let fake = FakeKernel::new("applied", "ok", "");
        fake.install("applied");
        let t = tarball(&fake);
        let ui = quiet_ui("ksplice-apply");
        let debug = DebugOpts::default();
        let opts = ApplyOpts {
            update: &t,
            partial: false,
            debug: &debug,
        };
        assert_eq!(install(&opts, fake.env(), &ui).unwrap(), EXIT_OK);
        let kept = Store::new(&fake.path("lib"))
            .installed("6.1.0-ksplice-unit")
            .unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].kid, KID);
        // At boot: already applied here, so nothing is loaded.
        assert_eq!(
            apply_installed(false, &debug, fake.env(), &ui).unwrap(),
            EXIT_OK
        );
        assert!(fake.log().is_empty(), "{:?}", fake.log());
        // A directory cannot be installed.
        let dir = fake.update(&["vmlinux"]);
        let opts = ApplyOpts {
            update: &dir,
            ..opts
        };
        let e = install(&opts, fake.env(), &ui).unwrap_err().to_string();
        assert!(e.contains("needs the update's tarball"), "{e}");
    }

    #[test]
    fn installed_updates_that_fail_are_reported_and_not_installed() {
        let fake = FakeKernel::new("preparing", "code_busy", "bash 42 do_sys\n");
        let t = tarball(&fake);
        let ui = quiet_ui("ksplice-apply");
        let debug = DebugOpts::default();
        let opts = ApplyOpts {
            update: &t,
            partial: false,
            debug: &debug,
        };
        // Refused by the kernel: not installed.
        assert_eq!(install(&opts, fake.env(), &ui).unwrap(), EXIT_ABORTED);
        let store = Store::new(&fake.path("lib"));
        assert!(store.installed("6.1.0-ksplice-unit").unwrap().is_empty());
        // Installed anyway (as if it had applied once): at boot it fails
        // and the status says so.
        store.install(&t, KID, "6.1.0-ksplice-unit").unwrap();
        assert_eq!(
            apply_installed(false, &debug, fake.env(), &ui).unwrap(),
            EXIT_ABORTED
        );
        // Nothing installed for this kernel: nothing to do.
        store.uninstall(KID, "6.1.0-ksplice-unit").unwrap();
        assert_eq!(
            apply_installed(false, &debug, fake.env(), &ui).unwrap(),
            EXIT_OK
        );
    }

    #[test]
    fn already_applied_does_nothing() {
        let fake = FakeKernel::new("applied", "ok", "");
        fake.install("applied");
        let u = fake.update(&["vmlinux"]);
        let code = run(&fake, &u, false, &DebugOpts::default()).unwrap();
        assert_eq!(code, EXIT_OK);
        assert!(fake.log().is_empty());
    }

    #[test]
    fn abort_cleans_up_in_reverse_load_order() {
        let fake = FakeKernel::new("preparing", "code_busy", "bash 42 do_sys\n");
        let u = fake.update(&["vmlinux", "kobject_example"]);
        fs_load(&fake, "kobject_example");
        let debugfile = fake.path("debug.txt");
        let debug = DebugOpts {
            debug: false,
            debugfile: Some(debugfile.clone()),
        };
        let code = run(&fake, &u, false, &debug).unwrap();
        assert_eq!(code, EXIT_ABORTED);
        let log = fake.log();
        let (loads, unloads) = log.split_at(5);
        let reversed: Vec<String> = loads
            .iter()
            .rev()
            .map(|l| l.replace("insmod", "rmmod"))
            .collect();
        assert_eq!(unloads, reversed);
        assert_eq!(std::fs::read_to_string(debugfile).unwrap(), "debug trace\n");
        assert!(!fake.path("state").join(KID).exists());
    }

    #[test]
    fn load_failure_unloads_what_was_loaded() {
        let fake = FakeKernel::new("applied", "ok", "");
        let u = fake.update(&["vmlinux"]);
        fake.fail_insmod("ksplice_abc_vmlinux_old");
        let e = run(&fake, &u, false, &DebugOpts::default()).unwrap_err();
        assert!(format!("{e:#}").contains("cannot load the old code module"));
        assert_eq!(
            fake.log()[3..],
            ["rmmod ksplice_abc_vmlinux_new", "rmmod ksplice_abc"]
        );
        assert!(!fake.loaded("ksplice_abc"));
    }

    #[test]
    fn missing_target_needs_partial() {
        let fake = FakeKernel::new("applied", "ok", "");
        let dir = fake.update(&["vmlinux", "kobject_example"]);
        let code = run(&fake, &dir, false, &DebugOpts::default()).unwrap();
        assert_eq!(code, EXIT_ABORTED);
        assert!(fake.log().is_empty());

        let u = Update::open(&dir).unwrap();
        let k = kernel(&fake);
        load(&k, &u, &mut Vec::new()).unwrap();
        prepare(&k, KID, true).unwrap();
        let partial = fake.path("sys/kernel/ksplice/abc/partial");
        assert!(std::fs::read_to_string(partial).unwrap().starts_with('1'));
        // The unused new code of the missing target is unloaded too.
        let new = "ksplice_abc_kobject_example_new";
        std::fs::write(fake.path("sys/module").join(new).join("refcnt"), "0\n").unwrap();
        finish(&k, &u, true);
        assert_eq!(
            fake.log()[5..],
            [
                "rmmod ksplice_abc_vmlinux_old",
                "rmmod ksplice_abc_kobject_example_old",
                "rmmod ksplice_abc_kobject_example_new",
            ]
        );
    }

    #[test]
    fn load_and_cleanup_orders() {
        let fake = FakeKernel::new("applied", "ok", "");
        let u = Update::open(&fake.update(&["vmlinux", "ext4"])).unwrap();
        let order: Vec<&str> = load_order(&u).into_iter().map(|(m, _, _)| m).collect();
        assert_eq!(
            order,
            [
                "ksplice_abc",
                "ksplice_abc_vmlinux_new",
                "ksplice_abc_vmlinux_old",
                "ksplice_abc_ext4_new",
                "ksplice_abc_ext4_old",
            ]
        );
        let loaded: Vec<String> = order.iter().map(|m| m.to_string()).collect();
        let mut reversed = order.clone();
        reversed.reverse();
        assert_eq!(cleanup_order(&loaded), reversed);
    }

    #[test]
    fn refused_prepare_never_loads_the_labels_module() {
        // Writing `prepare` over `preparing\n` does not make it prepared.
        let fake = FakeKernel::new("preparing", "no_match", "");
        let u = fake.update(&["vmlinux"]);
        let text = std::fs::read_to_string(u.join("contents")).unwrap();
        std::fs::write(
            u.join("contents"),
            format!("{text}labels ksplice_abc_vmlinux_labels ksplice-abc_vmlinux-labels.ko\n"),
        )
        .unwrap();
        std::fs::write(u.join("ksplice-abc_vmlinux-labels.ko"), b"\x7fELF").unwrap();
        let code = run(&fake, &u, false, &DebugOpts::default()).unwrap();
        assert_eq!(code, EXIT_ABORTED);
        let log = fake.log();
        assert!(!log.iter().any(|l| l.contains("labels")), "{log:?}");
        assert_eq!(log.last().map(String::as_str), Some("rmmod ksplice_abc"));
        let stage = std::fs::read_to_string(fake.path("sys/kernel/ksplice/abc/stage"));
        assert!(stage.is_err() || stage.unwrap().contains("cleanup"));
    }

    fn fs_load(fake: &FakeKernel, module: &str) {
        std::fs::create_dir_all(fake.path("sys/module").join(module)).unwrap();
    }
}
