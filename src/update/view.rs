//! Viewing updates (ksplice-view): the updates applied to the running
//! kernel, one of them, or an update on disk.

use super::cli::EXIT_OK;
use super::env::Env;
use super::kernel::{Kernel, Stage};
use super::record::{Record, short_description};
use super::ui::Ui;
use crate::package::Update;
use crate::package::names::is_module_name;
use anyhow::{Result, bail};
use std::path::Path;

/// What ksplice-view shows.
#[derive(Debug, Clone, Copy)]
pub enum Viewed<'a> {
    /// An update file (tarball or unpacked directory); the kernel is not
    /// touched.
    File(&'a Path),
    /// The update with this id (`KID`, `ksplice-KID` or `ksplice_KID`) in
    /// the running kernel.
    Id(&'a str),
    /// The updates applied to the running kernel.
    List,
}

/// Shows `what`; `env` is asked for only when the kernel is looked at.
pub fn view(what: Viewed, ui: &Ui, env: impl FnOnce() -> Result<Env>) -> Result<u8> {
    if let Viewed::File(f) = what {
        view_file(f, ui)?;
        return Ok(EXIT_OK);
    }
    let k = Kernel {
        env: env()?,
        ui: ui.clone(),
    };
    match what {
        Viewed::Id(id) => view_id(&k, id)?,
        _ => view_list(&k)?,
    }
    Ok(EXIT_OK)
}

fn print_functions(patched: Option<&[(String, String)]>) {
    for (object, function) in patched.unwrap_or_default() {
        println!("  {function} ({object})");
    }
}

fn print_patch(ui: &Ui, patch: Option<&str>) {
    if ui.verbose >= 1
        && let Some(p) = patch.filter(|p| !p.is_empty())
    {
        println!("Source patch of the update:");
        print!("{p}");
        if !p.ends_with('\n') {
            println!();
        }
    }
}

/// Each applied update: its id (only that with `-q`), description and
/// changed functions.
fn view_list(k: &Kernel) -> Result<()> {
    for kid in k.updates()? {
        if k.stage(&kid)? != Some(Stage::Applied) {
            continue;
        }
        if k.ui.verbose < 0 {
            println!("{kid}");
            continue;
        }
        let rec = Record::load(&k.env.state, &kid).unwrap_or_default();
        println!("{kid}: {}", short_description(rec.description.as_deref()));
        print_functions(rec.patched.as_deref());
    }
    Ok(())
}

/// One update of the kernel: its stage, and what its record keeps.
fn view_id(k: &Kernel, id: &str) -> Result<()> {
    let kid = id
        .strip_prefix("ksplice-")
        .or_else(|| id.strip_prefix("ksplice_"))
        .unwrap_or(id);
    if !is_module_name(kid) {
        bail!("{id}: not an update id");
    }
    let Some(stage) = k.stage(kid)? else {
        println!("Ksplice update {kid} is not present in the kernel.");
        return Ok(());
    };
    println!("Ksplice update {kid} is present in the kernel and is {stage}.");
    if k.ui.verbose < 0 {
        return Ok(());
    }
    let Some(rec) = Record::load(&k.env.state, kid) else {
        return Ok(());
    };
    println!(
        "Description: {}",
        short_description(rec.description.as_deref())
    );
    if let Some(p) = rec.patched.as_deref().filter(|p| !p.is_empty()) {
        println!("Changed functions:");
        print_functions(Some(p));
    }
    print_patch(&k.ui, rec.patch.as_deref());
    Ok(())
}

/// An update on disk: id, description, kernel, changed functions.
fn view_file(file: &Path, ui: &Ui) -> Result<()> {
    let u = Update::open(file)?;
    if ui.verbose < 0 {
        println!("{}", u.kid);
        return Ok(());
    }
    println!(
        "Ksplice update {}: {}",
        u.kid,
        short_description(u.description.as_deref())
    );
    println!(
        "Built for kernel {} ({})",
        u.utsname.release, u.utsname.version
    );
    match u.patched.as_deref() {
        Some(p) if !p.is_empty() => {
            println!("Changed functions:");
            print_functions(Some(p));
        }
        Some(_) => println!("Changed functions: none listed"),
        None => println!("Changed functions: not listed (update built without a patched file)"),
    }
    let patch = std::fs::read_to_string(u.file("patch")).ok();
    print_patch(ui, patch.as_deref());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::testkit::{FakeKernel, quiet_ui};

    #[test]
    fn a_file_is_viewed_without_the_kernel() {
        let fake = FakeKernel::new("applied", "ok", "");
        let u = fake.update(&["vmlinux"]);
        let ui = quiet_ui("ksplice-view");
        let code = view(Viewed::File(&u), &ui, || panic!("the kernel is looked at")).unwrap();
        assert_eq!(code, EXIT_OK);
        assert!(view(Viewed::Id("a/b"), &ui, || Ok(fake.env())).is_err());
        fake.install("applied");
        assert_eq!(view(Viewed::List, &ui, || Ok(fake.env())).unwrap(), EXIT_OK);
    }
}
