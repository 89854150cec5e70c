//! Reversing an applied update (ksplice-undo).
//!
//! Asks the update's core to reverse it (`reverse` written to
//! `/sys/kernel/ksplice/<kid>/stage`), then unloads its modules (old code
//! left over, new code, then the core) and removes the record
//! ksplice-apply kept.

use super::cli::{DebugOpts, EXIT_ABORTED, EXIT_OK};
use super::env::Env;
use super::kernel::{Kernel, Stage};
use super::record::Record;
use super::store::Store;
use super::ui::{Ui, explain_undo};
use crate::package::names::is_module_name;
use crate::package::{Contents, Update};
use anyhow::{Result, bail};
use std::path::Path;

/// Reverses the update `arg` names (its id, a module name of it, or its
/// tarball or unpacked directory); returns the exit status
/// ([`EXIT_ABORTED`] when the kernel refused, the update staying applied).
pub fn undo(arg: &str, debug: &DebugOpts, env: Env, ui: &Ui) -> Result<u8> {
    let k = Kernel {
        env,
        ui: ui.clone(),
    };
    let (kid, file_contents) = resolve_update(&k, arg)?;
    check_applied(&k, &kid)?;

    crate::util::interrupt::check()?;
    // From here on, a signal only takes effect when the undo is complete.
    ui.progress(&format!("Reversing Ksplice update {kid}..."));
    let written = k.write_attr(&kid, "stage", "reverse");
    if k.stage(&kid).ok().flatten() != Some(Stage::Reversed) {
        if let Err(e) = &written
            && ui.verbose >= 1
        {
            println!("writing reverse to the stage failed: {e}");
        }
        aborted(&k, &kid, debug);
        return Ok(EXIT_ABORTED);
    }
    if debug.wanted() {
        k.save_debug(&kid, debug.debugfile.as_deref());
    }
    unload_reversed(&k, &kid, file_contents)?;
    ui.progress("Done!");
    Ok(EXIT_OK)
}

/// The update id named by `arg`: `KID`, `ksplice-KID`, `ksplice_KID`, or a
/// module name `ksplice_KID_...` of a loaded update.
pub fn resolve_kid(k: &Kernel, arg: &str) -> Result<String> {
    let s = arg
        .strip_prefix("ksplice-")
        .or_else(|| arg.strip_prefix("ksplice_"))
        .unwrap_or(arg);
    if !k.update_present(s) {
        let cuts: Vec<usize> = s
            .char_indices()
            .filter(|&(_, c)| c == '_' || c == '-')
            .map(|(i, _)| i)
            .collect();
        for &i in cuts.iter().rev() {
            if i > 0 && k.update_present(&s[..i]) {
                return Ok(s[..i].to_string());
            }
        }
    }
    if !is_module_name(s) {
        bail!("{arg}: not an update id, nor an update file");
    }
    Ok(s.to_string())
}

/// `ksplice-undo --uninstall UPDATE` (named as for [`undo`]): undoes the
/// update when it is applied, then removes it from the updates installed
/// for the running kernel (`ksplice-apply --install`). An update neither
/// applied nor installed is an error; one that cannot be undone stays
/// installed.
pub fn uninstall(arg: &str, debug: &DebugOpts, env: Env, ui: &Ui) -> Result<u8> {
    let (store, release) = Store::running(&env)?;
    let k = Kernel {
        env: env.clone(),
        ui: ui.clone(),
    };
    let (kid, _) = resolve_update(&k, arg)?;
    if k.stage(&kid)? == Some(Stage::Applied) {
        let code = undo(&kid, debug, env, ui)?;
        if code != EXIT_OK {
            return Ok(code);
        }
    }
    if !store.uninstall(&kid, &release)? {
        bail!("Ksplice update {kid} is not installed for {release}");
    }
    ui.progress(&format!(
        "Uninstalled Ksplice update {kid} for {release}: it is no longer applied at boot."
    ));
    Ok(EXIT_OK)
}

/// The update `arg` names, and its contents when it was named by its file.
fn resolve_update(k: &Kernel, arg: &str) -> Result<(String, Option<Contents>)> {
    let path = Path::new(arg);
    let named = resolve_kid(k, arg).ok().filter(|kid| k.update_present(kid));
    if let Some(kid) = named {
        Ok((kid, None))
    } else if path.exists() {
        let u = Update::open(path)?;
        Ok((u.kid.clone(), Some(u.contents.clone())))
    } else if arg.contains('/') || arg.ends_with(".tar.gz") {
        bail!("{arg}: no such file");
    } else {
        Ok((resolve_kid(k, arg)?, None))
    }
}

/// Fails unless the update is applied (removing a stale record when it is
/// not in the kernel).
fn check_applied(k: &Kernel, kid: &str) -> Result<()> {
    match k.stage(kid)? {
        None => {
            // A record without an update in the kernel is stale.
            let _ = Record::remove(&k.env.state, kid);
            bail!("Ksplice update {kid} is not present in the kernel");
        }
        Some(Stage::Applied) => Ok(()),
        Some(s) => {
            let mods = k.update_modules(kid);
            bail!(
                "Ksplice update {kid} is not applied (stage {s}){}",
                if mods.is_empty() {
                    String::new()
                } else {
                    format!("; its modules are loaded: rmmod {}", mods.join(" "))
                }
            );
        }
    }
}

/// The kernel refused to reverse the update: explains why (the busy
/// tasks for `code_busy`) and saves the debug trace if wanted.
fn aborted(k: &Kernel, kid: &str, debug: &DebugOpts) {
    k.report_abort(
        kid,
        &format!("Ksplice update {kid} was not reversed (it is still applied)"),
        explain_undo,
        debug,
    );
}

/// The change modules to unload once an update is reversed, in order: the
/// old-code modules (those of `contents`, else `loaded_old`; then any other
/// of `loaded_old`), last loaded first, then the new-code modules (those of
/// `contents`, else `loaded_new`), last loaded first.
pub fn change_unload_order(
    contents: Option<&Contents>,
    loaded_old: &[String],
    loaded_new: &[String],
) -> Vec<String> {
    let (mut olds, news): (Vec<String>, Vec<String>) = match contents {
        Some(c) => (
            c.changes.iter().map(|c| c.old_module.clone()).collect(),
            c.changes.iter().map(|c| c.new_module.clone()).collect(),
        ),
        None => (loaded_old.to_vec(), loaded_new.to_vec()),
    };
    for m in loaded_old {
        if !olds.contains(m) {
            olds.push(m.clone());
        }
    }
    olds.into_iter()
        .rev()
        .chain(news.into_iter().rev())
        .collect()
}

/// The old code is live again: unloads the update's change modules, asks
/// the core to clean up, unloads the core and removes the record. Fails
/// when a module could not be unloaded.
fn unload_reversed(k: &Kernel, kid: &str, file_contents: Option<Contents>) -> Result<()> {
    let contents = Record::load(&k.env.state, kid)
        .and_then(|r| r.contents)
        .or(file_contents);
    let prefix = format!("ksplice_{kid}_");
    let loaded_old = k.modules_matching(&prefix, "_old");
    let loaded_new = match contents {
        Some(_) => Vec::new(),
        None => k.modules_matching(&prefix, "_new"),
    };
    let mut failed = Vec::new();
    // The labels modules first: they hold the new code modules.
    let order = k
        .modules_matching(&prefix, "_labels")
        .into_iter()
        .chain(change_unload_order(
            contents.as_ref(),
            &loaded_old,
            &loaded_new,
        ));
    for m in order {
        if k.module_loaded(&m)
            && let Err(e) = k.rmmod(&m)
        {
            k.ui.warn(&format!("{e:#}"));
            failed.push(m);
        }
    }
    if k.update_present(kid)
        && let Err(e) = k.write_attr(kid, "stage", "cleanup")
    {
        k.ui.warn(&format!(
            "{}/stage: cannot write cleanup: {e}",
            k.update_dir(kid).display()
        ));
    }
    let core = format!("ksplice_{kid}");
    if k.module_loaded(&core)
        && let Err(e) = k.rmmod(&core)
    {
        k.ui.warn(&format!("{e:#}"));
        failed.push(core);
    }
    if let Err(e) = Record::remove(&k.env.state, kid) {
        k.ui.warn(&format!("{e:#}"));
    }
    if !failed.is_empty() {
        bail!(
            "Ksplice update {kid} is reversed, but these modules could not be unloaded: {} (unload them with rmmod)",
            failed.join(" ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::testkit::{FakeKernel, KID, quiet_ui};

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unload_order_from_contents_then_leftovers() {
        let c = Contents::for_targets(KID, &["vmlinux", "ext4"]);
        let leftover = names(&["ksplice_abc_ext4_old", "ksplice_abc_xfs_old"]);
        assert_eq!(
            change_unload_order(Some(&c), &leftover, &[]),
            [
                "ksplice_abc_xfs_old",
                "ksplice_abc_ext4_old",
                "ksplice_abc_vmlinux_old",
                "ksplice_abc_ext4_new",
                "ksplice_abc_vmlinux_new",
            ]
        );
        let olds = names(&["ksplice_abc_ext4_old"]);
        let news = names(&["ksplice_abc_ext4_new", "ksplice_abc_vmlinux_new"]);
        assert_eq!(
            change_unload_order(None, &olds, &news),
            [
                "ksplice_abc_ext4_old",
                "ksplice_abc_vmlinux_new",
                "ksplice_abc_ext4_new",
            ]
        );
    }

    #[test]
    fn reversed_update_is_unloaded_and_forgotten() {
        let fake = FakeKernel::new("applied", "ok", "");
        fake.install("reversed");
        let rec = fake.path("state/abc");
        std::fs::create_dir_all(&rec).unwrap();
        let contents = Contents::for_targets(KID, &["vmlinux"]).render();
        std::fs::write(rec.join("contents"), contents).unwrap();
        let k = Kernel {
            env: fake.env(),
            ui: quiet_ui("ksplice-undo"),
        };
        // What follows the kernel's reversing the update.
        unload_reversed(&k, KID, None).unwrap();
        assert_eq!(
            fake.log(),
            ["rmmod ksplice_abc_vmlinux_new", "rmmod ksplice_abc"]
        );
        assert!(!rec.exists(), "the record is removed");
        assert!(!fake.path("sys/kernel/ksplice/abc").exists());
    }

    #[test]
    fn labels_module_is_unloaded_first() {
        let fake = FakeKernel::new("applied", "ok", "");
        fake.install("reversed");
        std::fs::create_dir_all(fake.path("sys/module/ksplice_abc_vmlinux_labels")).unwrap();
        let k = Kernel {
            env: fake.env(),
            ui: quiet_ui("ksplice-undo"),
        };
        assert_eq!(
            k.update_modules(KID),
            [
                "ksplice_abc_vmlinux_labels",
                "ksplice_abc_vmlinux_new",
                "ksplice_abc"
            ]
        );
        unload_reversed(&k, KID, None).unwrap();
        assert_eq!(
            fake.log(),
            [
                "rmmod ksplice_abc_vmlinux_labels",
                "rmmod ksplice_abc_vmlinux_new",
                "rmmod ksplice_abc"
            ]
        );
    }

    #[test]
    fn refused_reversal_keeps_the_update() {
        // Writing `reverse` over `applied\n` does not make it reversed.
        let fake = FakeKernel::new("applied", "code_busy", "sshd 77 uptime_proc_show\n");
        fake.install("applied");
        std::fs::create_dir_all(fake.path("state/abc")).unwrap();
        let ui = quiet_ui("ksplice-undo");
        let code = undo(KID, &DebugOpts::default(), fake.env(), &ui).unwrap();
        assert_eq!(code, EXIT_ABORTED);
        assert!(fake.log().is_empty());
        assert!(fake.path("state/abc").is_dir(), "the record is kept");
        assert!(fake.loaded("ksplice_abc_vmlinux_new"));
    }

    #[test]
    fn resolves_ids_and_module_names() {
        let fake = FakeKernel::new("applied", "ok", "");
        fake.install("applied");
        let ui = quiet_ui("ksplice-undo");
        let k = Kernel {
            env: fake.env(),
            ui,
        };
        for arg in [
            "abc",
            "ksplice-abc",
            "ksplice_abc",
            "ksplice_abc_vmlinux_new",
        ] {
            assert_eq!(resolve_kid(&k, arg).unwrap(), "abc", "{arg}");
        }
        assert!(resolve_kid(&k, "a/b").is_err());
        let e = undo("no/such.tar.gz", &DebugOpts::default(), fake.env(), &k.ui).unwrap_err();
        assert!(e.to_string().contains("no such file"));
    }

    #[test]
    fn not_present_removes_a_stale_record() {
        let fake = FakeKernel::new("applied", "ok", "");
        std::fs::create_dir_all(fake.path("state/abc")).unwrap();
        let ui = quiet_ui("ksplice-undo");
        let e = undo(KID, &DebugOpts::default(), fake.env(), &ui).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Ksplice update abc is not present in the kernel"
        );
        assert!(!fake.path("state/abc").exists());
    }
}
