//! Packaging: the update's directory `ksplice-KID/` (the files of the
//! update format, [`crate::package`]: api-version, contents, patched,
//! utsname, the modules, and debug/ with what the run built) and the
//! tarball `ksplice-KID.tar.gz` in the current directory, written whole or
//! not at all.

use super::context::Ctx;
use super::tree::copy_tree;
use crate::engine::report::Report;
use crate::package::{Contents, names};
use crate::util::interrupt::check as check_interrupt;
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Stage: writes the update directory and its tarball; returns the tarball.
pub(super) fn write(ctx: &mut Ctx) -> Result<PathBuf> {
    let name = format!("ksplice-{}", ctx.kid);
    let pkg = ctx.tmp.join(&name);
    fs::create_dir_all(pkg.join("debug/objects"))?;
    write_files(ctx, &pkg)?;
    write_modules(ctx, &pkg)?;
    copy_tree(&ctx.kmodsrc, &pkg.join("debug/kmodsrc"))?;
    copy_objects(ctx, &pkg)?;
    tar(ctx, &name)
}

/// The update's description files: patch, description, api-version,
/// timestamp, utsname, report.json, patched.
fn write_files(ctx: &Ctx, pkg: &Path) -> Result<()> {
    fs::copy(&ctx.patch_file, pkg.join("patch"))?;
    if let Some(d) = &ctx.o.description {
        fs::write(pkg.join("description"), format!("{d}\n"))?;
    }
    fs::write(
        pkg.join("api-version"),
        format!("{}\n", crate::package::API_VERSION),
    )?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    fs::write(pkg.join("timestamp"), format!("{}\n", now.as_secs()))?;
    fs::write(pkg.join("utsname"), utsname(&ctx.objtree, &ctx.config))?;
    fs::write(
        pkg.join("report.json"),
        aggregate_report(&ctx.kid, &ctx.reports)?,
    )?;
    // `<object> <function>` per changed or added function, for ksplice-view.
    let by_object: Vec<(String, String)> = ctx
        .reports
        .iter()
        .map(|(obj, json)| {
            let rel = obj.strip_prefix(&ctx.objtree).unwrap_or(obj);
            (rel.display().to_string(), json.clone())
        })
        .collect();
    fs::write(
        pkg.join("patched"),
        crate::package::patched::patched_file(&by_object)?,
    )?;
    Ok(())
}

/// The modules built for the changed targets, the core, and `contents`
/// (only its change lines, which the tools refuse, without a core).
fn write_modules(ctx: &Ctx, pkg: &Path) -> Result<()> {
    let kid = &ctx.kid;
    let mut built_targets = Vec::new();
    for (target, _) in &ctx.targets {
        let files = names::change_modules(kid, target).map(|(_, f)| ctx.kmodsrc.join(f));
        if files.iter().all(|f| f.is_file()) {
            for f in &files {
                fs::copy(f, pkg.join(f.file_name().unwrap_or_default()))?;
            }
            built_targets.push(target.as_str());
        }
    }
    let mut contents = Contents::for_targets(kid, &built_targets);
    let core = ctx.kmodsrc.join(&contents.core.file);
    let mut text = String::new();
    if ctx.built && core.is_file() {
        fs::copy(&core, pkg.join(&contents.core.file))?;
        for target in &built_targets {
            let (module, file) = names::labels_module(kid, target);
            if ctx.kmodsrc.join(&file).is_file() {
                fs::copy(ctx.kmodsrc.join(&file), pkg.join(&file))?;
                contents
                    .labels
                    .push(crate::package::contents::Core { module, file });
            }
        }
        text = contents.render();
    } else {
        // No core: the change lines alone, which the tools refuse.
        for line in contents
            .render()
            .lines()
            .filter(|l| l.starts_with("change "))
        {
            text.push_str(line);
            text.push('\n');
        }
    }
    if !ctx.built && ctx.o.verbose >= 0 {
        eprintln!(
            "ksplice-create: warning: no kmodsrc/ next to Makefile.ksplice: the update carries its objects (debug/objects) but no kernel modules"
        );
    }
    fs::write(pkg.join("contents"), text)?;
    Ok(())
}

/// Each reported object and what the run left next to it, under
/// `debug/objects/`.
fn copy_objects(ctx: &Ctx, pkg: &Path) -> Result<()> {
    for (obj, _) in &ctx.reports {
        let rel = obj.strip_prefix(&ctx.objtree).unwrap_or(obj);
        for suffix in [
            "",
            ".KSPLICE",
            ".KSPLICE_pre",
            ".KSPLICE_new_code",
            ".KSPLICE_old_code",
            ".KSPLICE_report.json",
        ] {
            let mut src = obj.as_os_str().to_owned();
            src.push(suffix);
            let src = PathBuf::from(src);
            if src.is_file() {
                let mut dst = pkg.join("debug/objects").join(rel).into_os_string();
                dst.push(suffix);
                let dst = PathBuf::from(dst);
                fs::create_dir_all(dst.parent().unwrap_or(pkg))?;
                fs::copy(&src, &dst)?;
            }
        }
    }
    Ok(())
}

/// `NAME.tar.gz` in the current directory, of the run's `NAME/`: written
/// as `NAME.tar.gz.tmp`, renamed when whole (an interruption leaves none).
fn tar(ctx: &Ctx, name: &str) -> Result<PathBuf> {
    let tarball = std::env::current_dir()?.join(format!("{name}.tar.gz"));
    let partial = tarball.with_extension("gz.tmp");
    let st = Command::new("tar")
        .arg("czf")
        .arg(&partial)
        .arg("-C")
        .arg(&ctx.tmp)
        .arg("--")
        .arg(name)
        .status()?;
    if !st.success() {
        let _ = fs::remove_file(&partial);
        bail!("{}: tar failed", tarball.display());
    }
    // An interruption during packaging leaves no tarball either.
    if let Err(e) = check_interrupt() {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    fs::rename(&partial, &tarball)?;
    Ok(tarball)
}

/// The update's `report.json`: the kid and every object's report.
// Each object's report is read back through its type, so a torn or foreign
// file fails here, naming the object, instead of going into the tarball.
fn aggregate_report(kid: &str, reports: &[(PathBuf, String)]) -> Result<String> {
    let mut out = format!(
        "{{\n\"kid\": {},\n\"objects\": [\n",
        crate::engine::report::quote(kid)
    );
    for (i, (obj, text)) in reports.iter().enumerate() {
        let report =
            Report::from_json(text).with_context(|| format!("{}: bad report", obj.display()))?;
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str(report.json().trim_end());
    }
    out.push_str("\n]\n}\n");
    Ok(out)
}

/// `release\nversion\n` of the kernel being patched. The version string
/// (`uname -v`) is that of the running kernel's build: the config
/// directory's `include/generated/utsversion.h` when it has one, else the
/// tree's; empty when neither says (ksplice-apply then checks the release
/// only).
fn utsname(objtree: &Path, config: &Path) -> String {
    let grab = |dir: &Path, file: &str, key: &str| -> Option<String> {
        let text = fs::read_to_string(dir.join(file)).ok()?;
        let line = text.lines().find(|l| l.contains(key))?;
        let q = line.find('"')?;
        Some(line[q + 1..].trim_end().trim_end_matches('"').to_string())
    };
    let release =
        grab(objtree, "include/generated/utsrelease.h", "UTS_RELEASE").unwrap_or_default();
    let version = [config, objtree]
        .iter()
        .find_map(|d| {
            grab(d, "include/generated/utsversion.h", "UTS_VERSION")
                .or_else(|| grab(d, "include/generated/compile.h", "UTS_VERSION"))
        })
        .unwrap_or_default();
    format!("{release}\n{version}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_report_reads_every_object_report() {
        let one = Report {
            object: "kernel/sys.o".into(),
            ..Default::default()
        };
        let reports = vec![
            (PathBuf::from("/t/kernel/sys.o"), one.json()),
            (PathBuf::from("/t/fs/a.o"), one.json().replace("sys", "a")),
        ];
        let all = aggregate_report("k1", &reports).unwrap();
        let v: serde_json::Value = serde_json::from_str(&all).unwrap();
        assert_eq!(v["kid"], "k1");
        assert_eq!(v["objects"][1]["object"], "kernel/a.o");
        let torn = vec![(PathBuf::from("/t/fs/b.o"), "{\"object\": ".to_string())];
        let e = format!("{:#}", aggregate_report("k1", &torn).unwrap_err());
        assert!(e.contains("/t/fs/b.o: bad report"), "{e}");
    }
}
