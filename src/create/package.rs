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
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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
    let written = write_tarball(&ctx.tmp.join(name), name, &partial)
        .with_context(|| format!("{}: cannot write", partial.display()))
        // An interruption during packaging leaves no tarball either.
        .and_then(|()| check_interrupt());
    if let Err(e) = written {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    fs::rename(&partial, &tarball)?;
    Ok(tarball)
}

/// Writes the directory `dir` as the gzip-compressed tar `out`, its top
/// directory named `name`. The archive is the same for the same files:
/// entries in name order, mtime 0, owner 0:0, each file's permission bits.
fn write_tarball(dir: &Path, name: &str, out: &Path) -> Result<()> {
    let file = fs::File::create(out)?;
    test_delay()?;
    let gz = GzEncoder::new(io::BufWriter::new(file), Compression::default());
    let mut builder = tar::Builder::new(gz);
    append_tree(&mut builder, dir, Path::new(name))?;
    let gz = builder.into_inner()?;
    let file = gz.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

/// `KSPLICE_TEST_PACKAGE_DELAY=SECONDS` (for tests/e2e/interrupt only):
/// packaging waits that long first, checking for an interruption, so that
/// a signal surely lands in the middle of it.
fn test_delay() -> Result<()> {
    let secs: u64 = std::env::var("KSPLICE_TEST_PACKAGE_DELAY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for _ in 0..secs.min(60) * 20 {
        check_interrupt()?;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}

/// Appends the directory `dir` as `name`, then what it holds (only
/// directories and regular files: `copy_tree` and `fs::copy` make nothing
/// else), checking for an interruption before each file.
fn append_tree<W: io::Write>(b: &mut tar::Builder<W>, dir: &Path, name: &Path) -> Result<()> {
    b.append_data(
        &mut header(&fs::metadata(dir)?, tar::EntryType::Directory, 0),
        name,
        io::empty(),
    )?;
    let mut children = fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
    children.sort_by_key(|e| e.file_name());
    for child in children {
        check_interrupt()?;
        let (path, name) = (child.path(), name.join(child.file_name()));
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            append_tree(b, &path, &name)?;
        } else if meta.is_file() {
            // The size in the header is that of the file opened.
            let file = fs::File::open(&path)?;
            let meta = file.metadata()?;
            let mut h = header(&meta, tar::EntryType::Regular, meta.len());
            b.append_data(&mut h, &name, io::Read::take(file, meta.len()))?;
        } else {
            bail!("{}: not a regular file or a directory", path.display());
        }
    }
    Ok(())
}

/// A GNU tar header with the fixed fields of [`write_tarball`].
fn header(meta: &fs::Metadata, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(meta.permissions().mode() & 0o777);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// What the update's `report.json` holds.
#[derive(Serialize)]
struct UpdateReport<'a> {
    kid: &'a str,
    objects: Vec<Report>,
}

/// The update's `report.json`: the kid and every object's report.
// Each object's report is read back through its type, so a torn or foreign
// file fails here, naming the object, instead of going into the tarball.
fn aggregate_report(kid: &str, reports: &[(PathBuf, String)]) -> Result<String> {
    let objects = reports
        .iter()
        .map(|(obj, text)| {
            Report::from_json(text).with_context(|| format!("{}: bad report", obj.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out = serde_json::to_string_pretty(&UpdateReport { kid, objects })?;
    out.push('\n');
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
        assert!(
            all.starts_with("{\n  \"kid\": \"k1\",\n  \"objects\": ["),
            "{all}"
        );
        assert!(all.ends_with("]\n}\n"), "{all}");
        let v: serde_json::Value = serde_json::from_str(&all).unwrap();
        assert_eq!(v["kid"], "k1");
        assert_eq!(v["objects"][1]["object"], "kernel/a.o");
        let torn = vec![(PathBuf::from("/t/fs/b.o"), "{\"object\": ".to_string())];
        let e = format!("{:#}", aggregate_report("k1", &torn).unwrap_err());
        assert!(e.contains("/t/fs/b.o: bad report"), "{e}");
    }

    /// The tarball unpacks with the tools' reader into the same tree, and
    /// is the same for the same files.
    #[test]
    fn tarball_is_readable_and_deterministic() {
        let d = crate::package::tarball::TempDir::new().unwrap();
        let top = d.path().join("ksplice-k1");
        let long = "d".repeat(120);
        fs::create_dir_all(top.join("debug/objects").join(&long)).unwrap();
        fs::write(top.join("contents"), "core ksplice_k1 ksplice-k1.ko\n").unwrap();
        fs::write(top.join("ksplice-k1.ko"), vec![7u8; 3000]).unwrap();
        fs::set_permissions(top.join("ksplice-k1.ko"), fs::Permissions::from_mode(0o751)).unwrap();
        fs::write(top.join("debug/objects").join(&long).join("a.o"), "ELF").unwrap();
        let (one, two) = (d.path().join("1.tar.gz"), d.path().join("2.tar.gz"));
        write_tarball(&top, "ksplice-k1", &one).unwrap();
        fs::write(top.join("contents"), "core ksplice_k1 ksplice-k1.ko\n").unwrap();
        write_tarball(&top, "ksplice-k1", &two).unwrap();
        assert_eq!(fs::read(&one).unwrap(), fs::read(&two).unwrap());
        // GNU tar reads it too, when there is one.
        if let Ok(out) = std::process::Command::new("tar")
            .arg("-tzf")
            .arg(&one)
            .output()
        {
            assert!(out.status.success(), "{out:?}");
            let list = String::from_utf8_lossy(&out.stdout);
            assert!(
                list.contains(&format!("ksplice-k1/debug/objects/{long}/a.o\n")),
                "{list}"
            );
        }
        let u = crate::package::tarball::unpack(&one).unwrap();
        assert_eq!(u.root().file_name().unwrap(), "ksplice-k1");
        assert_eq!(
            fs::read(u.root().join("ksplice-k1.ko")).unwrap(),
            vec![7u8; 3000]
        );
        // Mode, owner and mtime in the headers.
        let data = fs::read(&one).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&data[..]));
        let mut names = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(
                (h.uid().unwrap(), h.gid().unwrap(), h.mtime().unwrap()),
                (0, 0, 0)
            );
            let name = e.path().unwrap().display().to_string();
            if name.ends_with(".ko") {
                assert_eq!(h.mode().unwrap(), 0o751);
            }
            names.push(name);
        }
        assert_eq!(names[0], "ksplice-k1");
        assert_eq!(names[1], "ksplice-k1/contents");
        assert!(
            names.iter().any(|n| n.ends_with(&format!("{long}/a.o"))),
            "{names:?}"
        );
    }
}
