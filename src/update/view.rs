//! Viewing updates (ksplice-view): the updates applied to the running
//! kernel, one of them, or an update on disk; as text, or as one JSON
//! document ([`Format::Json`]) with the same information.
//!
//! What is shown is gathered first ([`Shown`]), then printed in the format
//! asked for.

use super::cli::EXIT_OK;
use super::env::Env;
use super::kernel::{Kernel, Stage};
use super::record::{Record, short_description};
use super::store::Store;
use super::ui::Ui;
use crate::package::Update;
use crate::package::names::is_module_name;
use anyhow::{Result, bail};
use serde::Serialize;
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

/// How ksplice-view prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Lines for people.
    Text,
    /// One JSON document: an array of [`Shown`] for the list, one
    /// [`Shown`] otherwise.
    Json,
}

/// One update as ksplice-view shows it (`-q`: its id, and in the kernel
/// its stage, only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shown {
    /// The update id.
    pub kid: String,
    /// `--id`: whether the update is in the kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
    /// In the kernel: its stage (`applied` for every listed update that
    /// is in the kernel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The list: whether it is installed for the running kernel, to be
    /// applied at every boot (`ksplice-apply --install`); the list also
    /// holds the installed updates that are not applied (no stage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed: Option<bool>,
    /// What its record (in the kernel) or the update (on disk) says; none
    /// with `-q`, or for an update in the kernel without a record.
    #[serde(flatten)]
    pub details: Option<Details>,
}

/// What an update says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Details {
    /// Its description (all of it; the text shows the first line), null
    /// when it has none.
    pub description: Option<String>,
    /// On disk: the kernel it was built for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<BuiltFor>,
    /// The functions it changes; null when not listed.
    pub patched: Option<Vec<Function>>,
    /// With `-v`: the source patch, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
}

/// The kernel an update was built for (`uname -r`, `uname -v`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuiltFor {
    /// `uname -r`.
    pub release: String,
    /// `uname -v`.
    pub version: String,
}

/// A function an update changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Function {
    /// The object it is in (`vmlinux` or a module).
    pub object: String,
    /// Its name.
    pub function: String,
}

/// Shows `what` in `format`; `env` is asked for only when the kernel is
/// looked at.
pub fn view(
    what: Viewed,
    format: Format,
    ui: &Ui,
    env: impl FnOnce() -> Result<Env>,
) -> Result<u8> {
    if let Viewed::File(f) = what {
        let shown = on_disk(f, ui)?;
        match format {
            Format::Text => print_file(&shown),
            Format::Json => print_json(&shown)?,
        }
        return Ok(EXIT_OK);
    }
    let k = Kernel {
        env: env()?,
        ui: ui.clone(),
    };
    match what {
        Viewed::Id(id) => {
            let shown = in_kernel(&k, id)?;
            match format {
                Format::Text => print_id(&shown),
                Format::Json => print_json(&shown)?,
            }
        }
        _ => {
            let mut shown = applied(&k)?;
            add_installed(&k, &mut shown)?;
            match format {
                Format::Text => print_list(&shown, ui.verbose < 0),
                Format::Json => print_json(&shown)?,
            }
        }
    }
    Ok(EXIT_OK)
}

fn print_json(value: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn functions(patched: Option<&[(String, String)]>) -> Option<Vec<Function>> {
    patched.map(|p| {
        p.iter()
            .map(|(object, function)| Function {
                object: object.clone(),
                function: function.clone(),
            })
            .collect()
    })
}

/// The patch, shown with `-v` when there is one.
fn shown_patch(ui: &Ui, patch: Option<String>) -> Option<String> {
    patch.filter(|p| ui.verbose >= 1 && !p.is_empty())
}

/// What a record says (`None` with `-q`).
fn recorded(ui: &Ui, rec: Option<Record>) -> Option<Details> {
    let rec = rec.filter(|_| ui.verbose >= 0)?;
    Some(Details {
        description: rec.description,
        kernel: None,
        patched: functions(rec.patched.as_deref()),
        patch: shown_patch(ui, rec.patch),
    })
}

/// Each applied update, with its record.
fn applied(k: &Kernel) -> Result<Vec<Shown>> {
    let mut out = Vec::new();
    for kid in k.updates()? {
        if k.stage(&kid)? != Some(Stage::Applied) {
            continue;
        }
        let rec = Record::load(&k.env.state, &kid).unwrap_or_default();
        out.push(Shown {
            details: recorded(&k.ui, Some(rec)),
            kid,
            present: None,
            stage: Some(Stage::Applied.to_string()),
            installed: None,
        });
    }
    Ok(out)
}

/// Marks the applied updates installed for the running kernel, and adds
/// those installed but not applied.
fn add_installed(k: &Kernel, shown: &mut Vec<Shown>) -> Result<()> {
    let (store, release) = Store::running(&k.env)?;
    let installed = store.installed(&release)?;
    for u in shown.iter_mut() {
        u.installed = Some(installed.iter().any(|i| i.kid == u.kid));
    }
    for i in installed {
        if !shown.iter().any(|u| u.kid == i.kid) {
            shown.push(Shown {
                kid: i.kid,
                present: None,
                stage: None,
                installed: Some(true),
                details: None,
            });
        }
    }
    Ok(())
}

/// One update of the kernel: its stage, and what its record keeps.
fn in_kernel(k: &Kernel, id: &str) -> Result<Shown> {
    let kid = id
        .strip_prefix("ksplice-")
        .or_else(|| id.strip_prefix("ksplice_"))
        .unwrap_or(id);
    if !is_module_name(kid) {
        bail!("{id}: not an update id");
    }
    let stage = k.stage(kid)?;
    let details = match stage {
        Some(_) => recorded(&k.ui, Record::load(&k.env.state, kid)),
        None => None,
    };
    Ok(Shown {
        kid: kid.to_string(),
        present: Some(stage.is_some()),
        stage: stage.map(|s| s.to_string()),
        installed: None,
        details,
    })
}

/// An update on disk: id, description, kernel, changed functions.
fn on_disk(file: &Path, ui: &Ui) -> Result<Shown> {
    let u = Update::open(file)?;
    let details = (ui.verbose >= 0).then(|| Details {
        description: u.description.clone(),
        kernel: Some(BuiltFor {
            release: u.utsname.release.clone(),
            version: u.utsname.version.clone(),
        }),
        patched: functions(u.patched.as_deref()),
        patch: shown_patch(ui, std::fs::read_to_string(u.file("patch")).ok()),
    });
    Ok(Shown {
        kid: u.kid.clone(),
        present: None,
        stage: None,
        installed: None,
        details,
    })
}

fn print_functions(patched: &[Function]) {
    for f in patched {
        println!("  {} ({})", f.function, f.object);
    }
}

fn print_patch(patch: Option<&str>) {
    if let Some(p) = patch {
        println!("Source patch of the update:");
        print!("{p}");
        if !p.ends_with('\n') {
            println!();
        }
    }
}

/// Each applied update: its id (only that with `-q`), description and
/// changed functions.
fn print_list(list: &[Shown], quiet: bool) {
    for u in list.iter().filter(|u| u.stage.is_some()) {
        let Some(d) = &u.details else {
            println!("{}", u.kid);
            continue;
        };
        println!("{}: {}", u.kid, short_description(d.description.as_deref()));
        print_functions(d.patched.as_deref().unwrap_or_default());
    }
    if quiet {
        return;
    }
    let installed: Vec<String> = list
        .iter()
        .filter(|u| u.installed == Some(true))
        .map(|u| match u.stage {
            Some(_) => format!("{} (applied)", u.kid),
            None => format!("{} (not applied)", u.kid),
        })
        .collect();
    if !installed.is_empty() {
        println!(
            "Installed for this kernel (applied at every boot by ksplice.service): {}",
            installed.join(", ")
        );
    }
}

/// One update of the kernel.
fn print_id(u: &Shown) {
    let Some(stage) = &u.stage else {
        println!("Ksplice update {} is not present in the kernel.", u.kid);
        return;
    };
    println!(
        "Ksplice update {} is present in the kernel and is {stage}.",
        u.kid
    );
    let Some(d) = &u.details else {
        return;
    };
    println!(
        "Description: {}",
        short_description(d.description.as_deref())
    );
    if let Some(p) = d.patched.as_deref().filter(|p| !p.is_empty()) {
        println!("Changed functions:");
        print_functions(p);
    }
    print_patch(d.patch.as_deref());
}

/// An update on disk.
fn print_file(u: &Shown) {
    let Some(d) = &u.details else {
        println!("{}", u.kid);
        return;
    };
    println!(
        "Ksplice update {}: {}",
        u.kid,
        short_description(d.description.as_deref())
    );
    if let Some(k) = &d.kernel {
        println!("Built for kernel {} ({})", k.release, k.version);
    }
    match d.patched.as_deref() {
        Some(p) if !p.is_empty() => {
            println!("Changed functions:");
            print_functions(p);
        }
        Some(_) => println!("Changed functions: none listed"),
        None => println!("Changed functions: not listed (update built without a patched file)"),
    }
    print_patch(d.patch.as_deref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::testkit::{FakeKernel, KID, quiet_ui};

    #[test]
    fn a_file_is_viewed_without_the_kernel() {
        let fake = FakeKernel::new("applied", "ok", "");
        let u = fake.update(&["vmlinux"]);
        let ui = quiet_ui("ksplice-view");
        for format in [Format::Text, Format::Json] {
            let never = || panic!("the kernel is looked at");
            assert_eq!(view(Viewed::File(&u), format, &ui, never).unwrap(), EXIT_OK);
        }
        assert!(view(Viewed::Id("a/b"), Format::Text, &ui, || Ok(fake.env())).is_err());
        fake.install("applied");
        let list = view(Viewed::List, Format::Json, &ui, || Ok(fake.env()));
        assert_eq!(list.unwrap(), EXIT_OK);
    }

    #[test]
    fn the_list_names_the_installed_updates() {
        let fake = FakeKernel::new("applied", "ok", "");
        let k = Kernel {
            env: fake.env(),
            ui: quiet_ui("ksplice-view"),
        };
        let t = fake.dir.join("u.tar.gz");
        std::fs::write(&t, "not read").unwrap();
        let store = Store::new(&fake.path("lib"));
        store.install(&t, "other", "6.1.0-ksplice-unit").unwrap();
        fake.install("applied");
        let mut list = applied(&k).unwrap();
        add_installed(&k, &mut list).unwrap();
        let v = serde_json::to_value(&list).unwrap();
        assert_eq!(v[0]["kid"], KID);
        assert_eq!(v[0]["installed"], false);
        assert_eq!(v[1], serde_json::json!({"kid": "other", "installed": true}));
        store.install(&t, KID, "6.1.0-ksplice-unit").unwrap();
        let mut list = applied(&k).unwrap();
        add_installed(&k, &mut list).unwrap();
        assert_eq!(list[0].installed, Some(true));
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn json_has_what_the_text_shows() {
        let fake = FakeKernel::new("applied", "ok", "");
        let u = fake.update(&["vmlinux"]);
        let ui = Ui {
            verbose: 0,
            ..quiet_ui("ksplice-view")
        };
        let disk = serde_json::to_value(on_disk(&u, &ui).unwrap()).unwrap();
        assert_eq!(disk["kid"], KID);
        assert_eq!(disk["description"], "A fix\n");
        assert_eq!(disk["kernel"]["release"], "6.1.0-ksplice-unit");
        assert!(disk["patched"].is_null(), "not listed: {disk}");
        assert!(disk.get("stage").is_none() && disk.get("patch").is_none());

        let k = Kernel {
            env: fake.env(),
            ui: ui.clone(),
        };
        let absent = serde_json::to_value(in_kernel(&k, "ksplice_abc").unwrap()).unwrap();
        assert_eq!(absent, serde_json::json!({"kid": KID, "present": false}));
        fake.install("applied");
        let list = serde_json::to_value(applied(&k).unwrap()).unwrap();
        assert_eq!(list[0]["kid"], KID);
        assert_eq!(list[0]["stage"], "applied");
        assert!(list[0]["description"].is_null(), "no record: {list}");
        let one = in_kernel(&k, KID).unwrap();
        assert_eq!(one.present, Some(true));
        assert_eq!(one.details, None, "no record, nothing more");
        let quiet = Kernel {
            env: fake.env(),
            ui: quiet_ui("ksplice-view"),
        };
        let ids = serde_json::to_value(applied(&quiet).unwrap()).unwrap();
        assert_eq!(ids, serde_json::json!([{"kid": KID, "stage": "applied"}]));
    }
}
