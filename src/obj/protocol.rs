//! The marker-file protocol of `ksplice-obj`, command by command.
//!
//! For an object `OBJ` the protocol files are `OBJ.KSPLICE` (the marker:
//! empty when the object did not change, `1\n` when it did),
//! `OBJ.KSPLICE_pre` (the object before the patch), `OBJ.KSPLICE_new_code`,
//! `OBJ.KSPLICE_old_code` and `OBJ.KSPLICE_report.json`.

use crate::engine::boot;
use crate::engine::elf::Object;
use crate::engine::error::ObjError;
use crate::engine::exports;
use crate::engine::span::HashSet;
use crate::engine::sysmap::{self, SystemMap};
use crate::engine::tables::{self, KernelVersion};
use crate::engine::transform::{self, NewCodeOptions};
use crate::util::fsutil::{self, ObjLock};
use crate::util::log;
use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Suffix of the marker file.
pub const MARKER: &str = ".KSPLICE";

/// The protocol files of one object.
#[derive(Debug, Clone)]
pub struct Files {
    /// The object itself.
    pub obj: PathBuf,
}

impl Files {
    fn with(&self, suffix: &str) -> PathBuf {
        let mut s = self.obj.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    }
    /// `OBJ.KSPLICE`.
    pub fn marker(&self) -> PathBuf {
        self.with(MARKER)
    }
    /// `OBJ.KSPLICE_pre`.
    pub fn pre(&self) -> PathBuf {
        self.with(".KSPLICE_pre")
    }
    /// `OBJ.KSPLICE_new_code`.
    pub fn new_code(&self) -> PathBuf {
        self.with(".KSPLICE_new_code")
    }
    /// `OBJ.KSPLICE_old_code`.
    pub fn old_code(&self) -> PathBuf {
        self.with(".KSPLICE_old_code")
    }
    /// `OBJ.KSPLICE_report.json`.
    pub fn report(&self) -> PathBuf {
        self.with(".KSPLICE_report.json")
    }

    /// The object named by an argument that must end in `suffix`.
    pub fn from_arg(arg: &str, suffix: &str) -> Result<Files> {
        match arg.strip_suffix(suffix) {
            Some(obj) if !obj.is_empty() => Ok(Files {
                obj: PathBuf::from(obj),
            }),
            _ => bail!("{arg}: expected a file name ending in {suffix}"),
        }
    }
}

fn require(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{}: No such file or directory", path.display())
        }
        Err(e) => Err(anyhow!("{}: {e}", path.display())),
    }
}

/// Reads and parses an object, naming the file in any error.
pub fn load_object(path: &Path) -> Result<Object> {
    let data = fsutil::read(path)?;
    parse_object(path, &data)
}

/// Parses the contents of the object file `path`, naming it in any error.
/// An object holding a table whose layout depends on the kernel version is
/// refused while the version is unknown ([`select_kernel`]).
fn parse_object(path: &Path, data: &[u8]) -> Result<Object> {
    let obj = Object::parse(data).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    if tables::kernel().is_none()
        && let Some(t) = tables::VERSIONED_TABLES
            .iter()
            .find(|t| obj.section_by_name(t).is_some())
    {
        bail!(
            "{}: {t}: its layout depends on the kernel version, which is unknown \
             (set {KERNEL_VERSION_VAR}, or run in the kernel's object tree)",
            path.display()
        );
    }
    Ok(obj)
}

/// The environment variable naming the target kernel's version.
pub const KERNEL_VERSION_VAR: &str = "KSPLICE_KERNEL_VERSION";

/// Selects the table layouts of the kernel the objects belong to, from
/// the first of: `$KSPLICE_KERNEL_VERSION` (Makefile.ksplice sets it),
/// `$KERNELVERSION` (Kbuild exports it to the commands it runs), the
/// object tree's `include/config/kernel.release` in the current directory.
/// With none of them the version stays unknown (see [`parse_object`]); a
/// version the engine has no layouts for is an error.
pub fn select_kernel() -> Result<()> {
    let release = "include/config/kernel.release";
    let (from, text) = if let Ok(v) = std::env::var(KERNEL_VERSION_VAR) {
        (format!("${KERNEL_VERSION_VAR}"), v)
    } else if let Ok(v) = std::env::var("KERNELVERSION") {
        ("$KERNELVERSION".to_string(), v)
    } else if let Ok(v) = std::fs::read_to_string(release) {
        (release.to_string(), v)
    } else {
        return Ok(());
    };
    let v = KernelVersion::parse(&text)
        .ok_or_else(|| anyhow!("{from}: '{}' is not a kernel version", text.trim()))?;
    tables::use_kernel(v).map_err(|e| anyhow!("{from}: {e}"))
}

/// The System.map of `$KSPLICE_CONFIG_DIR` (empty without it), reduced to
/// the lines naming a symbol of `objs` or one of ftrace's callers: the
/// transforms of these objects look up no other name, so the result is the same as with the whole map, and
/// the lines of the other twenty-odd thousand kernel symbols are skipped
/// instead of parsed and indexed on every invocation.
fn system_map_for(objs: &[&Object]) -> Result<SystemMap> {
    let Some(path) = sysmap::config_path() else {
        return Ok(SystemMap::default());
    };
    let bytes = std::fs::read(&path)
        .with_context(|| format!("{}: cannot read System.map", path.display()))?;
    let mut names: HashSet<&str> = HashSet::default();
    names.extend(
        objs.iter()
            .flat_map(|o| o.symbols.iter().map(|s| s.name.as_str())),
    );
    names.extend(crate::engine::transform::FTRACE_CALLERS);
    // Decoded as SystemMap::parse decodes it (from_utf8 first: it is much
    // faster than the lossy decoder on the usual, valid, text).
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(&bytes),
    };
    let mut kept = String::new();
    for line in text.lines() {
        if map_line_name(line).is_some_and(|name| names.contains(name)) {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    Ok(SystemMap::parse(&kept))
}

/// The name field of a System.map line, the third of `split_whitespace`;
/// quickly for the usual `%016x %c NAME` layout.
fn map_line_name(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    let ws = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    if b.len() > 19
        && b[16] == b' '
        && b[18] == b' '
        && !ws(b[17])
        && !ws(b[19])
        && b[..16].iter().all(|&c| c.is_ascii_hexdigit())
        && b[17].is_ascii()
    {
        // The name runs to the first whitespace; a non-ASCII character
        // (which may be whitespace too) leaves it to split_whitespace.
        match b[19..].iter().position(|&c| ws(c) || !c.is_ascii()) {
            None => return Some(&line[19..]),
            Some(k) if b[19 + k].is_ascii() => return Some(&line[19..19 + k]),
            Some(_) => {}
        }
    }
    line.split_whitespace().nth(2)
}

fn write_object(path: &Path, obj: &Object) -> Result<()> {
    let bytes = obj
        .to_bytes()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    fsutil::write_atomic(path, &bytes)
}

/// Removes stale outputs and writes an empty marker: "unchanged".
fn empty_diff(f: &Files) -> Result<()> {
    fsutil::remove_if_exists(&f.new_code())?;
    fsutil::remove_if_exists(&f.old_code())?;
    fsutil::remove_if_exists(&f.report())?;
    fsutil::write_atomic(&f.marker(), b"")
}

/// `snap OBJ.KSPLICE`: records that OBJ is the baseline.
pub fn snap(arg: &str) -> Result<()> {
    let f = Files::from_arg(arg, MARKER)?;
    require(&f.obj)?;
    let _lock = ObjLock::acquire(&f.obj)?;
    log::action("SNAP", &f.obj.display().to_string());
    fsutil::remove_if_exists(&f.pre())?;
    empty_diff(&f)
}

/// Refuses a patch that adds or removes an export of Linux 6.5 and later
/// (`.export_symbol`): the running kernel's export table cannot change.
fn refuse_export_changes(obj_name: &str, pre: &Object, post: &Object) -> Result<()> {
    let (added, removed) = exports::changed_exports(pre, post);
    let what = match (added.first(), removed.first()) {
        (Some(s), _) => format!("adds the export {s}"),
        (None, Some(s)) => format!("removes the export {s}"),
        (None, None) => return Ok(()),
    };
    bail!("{obj_name}: the patch {what}: an update cannot change the running kernel's export table")
}

/// `diff OBJ.KSPLICE`: compares OBJ with OBJ.KSPLICE_pre.
pub fn diff(arg: &str) -> Result<()> {
    let f = Files::from_arg(arg, MARKER)?;
    require(&f.obj)?;
    let _lock = ObjLock::acquire(&f.obj)?;
    // A failed diff must leave no marker claiming anything.
    fsutil::remove_if_exists(&f.marker())?;
    if !f.pre().exists() {
        bail!("Patch creates new object {}", f.obj.display());
    }
    log::action("DIFF", &f.obj.display().to_string());
    if fsutil::same_contents(&f.pre(), &f.obj)? {
        fsutil::remove_if_exists(&f.pre())?;
        return empty_diff(&f);
    }
    let pre_data = fsutil::read(&f.pre())?;
    let post_data = fsutil::read(&f.obj)?;
    let pre = parse_object(&f.pre(), &pre_data)?;
    drop(pre_data);
    let post = parse_object(&f.obj, &post_data)?;
    drop(post_data);
    let map = system_map_for(&[&pre, &post])?;
    let kid = std::env::var("KSPLICE_KID").unwrap_or_else(|_| "unknown".to_string());
    let obj_name = f.obj.to_string_lossy().into_owned();
    let pre_name = f.pre().to_string_lossy().into_owned();
    refuse_export_changes(&obj_name, &pre, &post)?;
    let boot_only = boot::changed_init_functions(&pre, &post);
    let (mut nc, old) = transform::keep_new_and_old_code(
        pre,
        &pre_name,
        post,
        &obj_name,
        &kid,
        &map,
        new_code_options(),
    )
    .map_err(|e| anyhow!("{obj_name}: {e}"))?;
    nc.report.boot_only = boot_only;
    fsutil::write_atomic(&f.report(), nc.report.json().as_bytes())?;
    if log::level() >= 1 {
        print!("{}", nc.report.text());
    }
    if let Some(first) = nc.report.refused.first() {
        if allow_data_change() {
            for e in &nc.report.refused {
                eprintln!(
                    "ksplice-obj: {obj_name}: warning: ignoring change to writable data {} in section {} ({})",
                    e.name,
                    e.section,
                    e.reason.as_deref().unwrap_or("changed")
                );
            }
        } else {
            bail!(
                "{obj_name}: refusing to change writable data {} in section {} ({}): the running kernel's data cannot be re-initialised by replacing code (KSPLICE_ALLOW_DATA_CHANGE=1 ignores the change)",
                first.name,
                first.section,
                first.reason.as_deref().unwrap_or("changed")
            );
        }
    }
    let Some(new_code) = nc.object else {
        // Only noise differs; the pre object stays for revert. The report
        // stays when it names boot-time code, which ksplice-create reports.
        empty_diff(&f)?;
        if !nc.report.boot_only.is_empty() {
            fsutil::write_atomic(&f.report(), nc.report.json().as_bytes())?;
        }
        return Ok(());
    };
    write_object(&f.new_code(), &new_code)?;
    let old = old
        .ok_or_else(|| anyhow!("{pre_name}: no old code"))?
        .map_err(|e| anyhow!("{pre_name}: {e}"))?;
    write_object(&f.old_code(), &old)?;
    fsutil::write_atomic(&f.marker(), b"1\n")
}

/// `KSPLICE_DATA_IN_PLACE=1` (set by ksplice-create, which then decides
/// from debug information which rewrites to accept): changed writable data
/// of unchanged size is rewritten in place instead of refused. Ignored
/// with `KSPLICE_ALLOW_DATA_CHANGE=1`.
fn new_code_options() -> NewCodeOptions {
    NewCodeOptions {
        rewrite_writable_data: !allow_data_change()
            && std::env::var("KSPLICE_DATA_IN_PLACE").is_ok_and(|v| v == "1"),
    }
}

/// `KSPLICE_ALLOW_DATA_CHANGE=1`: changes to writable data are ignored with a
/// warning instead of refused.
pub fn allow_data_change() -> bool {
    std::env::var("KSPLICE_ALLOW_DATA_CHANGE").is_ok_and(|v| v == "1")
}

/// keep-old-code of `src` into `out`.
fn keep_old_code(src: &Path, out: &Path) -> Result<()> {
    let map = SystemMap::from_env()?;
    let obj = load_object(src)?;
    let old = transform::keep_old_code(obj, &src.to_string_lossy(), &map)
        .map_err(|e| anyhow!("{}: {e}", src.display()))?;
    write_object(out, &old)
}

/// `old_code OBJ.KSPLICE_old_code`: keep-old-code of the pre object, or of
/// OBJ when there is no pre.
pub fn old_code(arg: &str) -> Result<()> {
    let f = Files::from_arg(arg, ".KSPLICE_old_code")?;
    let src = if f.pre().exists() {
        f.pre()
    } else {
        f.obj.clone()
    };
    require(&src)?;
    // The same lock as every other command on this object: the object itself.
    let _lock = ObjLock::acquire(if f.obj.exists() { &f.obj } else { &src })?;
    log::action("OLDCODE", &f.obj.display().to_string());
    keep_old_code(&src, &f.old_code())
}

fn tool(var: &str, default: &str) -> Result<Vec<String>> {
    let v = std::env::var(var).unwrap_or_default();
    let words = fsutil::shell_words(&v).with_context(|| format!("${var}"))?;
    Ok(if words.is_empty() {
        vec![default.to_string()]
    } else {
        words
    })
}

/// Links `ins` into `out`: `$LD -r` for several, a copy for one, an empty
/// archive for none.
fn link_objs(out: &Path, ins: &[PathBuf]) -> Result<()> {
    match ins {
        [] => fsutil::write_atomic(out, crate::engine::elf::AR_MAGIC),
        [one] => fsutil::write_atomic(out, &fsutil::read(one)?),
        _ => {
            let ld = tool("LD", "ld")?;
            let tmp = fsutil::tmp_path(out);
            log::debug(|| format!("{} -r -o {} {:?}", ld.join(" "), tmp.display(), ins));
            let status = Command::new(&ld[0])
                .args(&ld[1..])
                .arg("-r")
                .arg("-o")
                .arg(&tmp)
                .args(ins)
                .status()
                .with_context(|| format!("{}: cannot run {}", out.display(), ld[0]))?;
            if !status.success() {
                let _ = std::fs::remove_file(&tmp);
                bail!("{}: {} -r failed ({status})", out.display(), ld.join(" "));
            }
            std::fs::rename(&tmp, out).with_context(|| format!("{}: cannot write", out.display()))
        }
    }
}

/// `combine OUT.KSPLICE IN...`: the marker of a composite object from its parts.
pub fn combine(out: &str, ins: &[String]) -> Result<()> {
    let f = Files::from_arg(out, MARKER)?;
    let _lock = if f.obj.exists() {
        Some(ObjLock::acquire(&f.obj)?)
    } else {
        None
    };
    let mut new_parts: Vec<PathBuf> = Vec::new();
    let mut old_parts: Vec<PathBuf> = Vec::new();
    for input in ins {
        if let Some(obj) = input.strip_suffix(MARKER).filter(|o| !o.is_empty()) {
            let len = std::fs::metadata(input)
                .with_context(|| format!("{input}: cannot read marker"))?
                .len();
            if len == 0 {
                continue;
            }
            let part = Files {
                obj: PathBuf::from(obj),
            };
            new_parts.push(part.new_code());
            old_parts.push(part.old_code());
        } else if input.ends_with(".KSPLICE_old_code") {
            let p = PathBuf::from(input);
            if old_parts.last() != Some(&p) {
                old_parts.push(p);
            }
        } else if f.marker().as_os_str() == format!("{input}{MARKER}").as_str() {
            let own = Files {
                obj: PathBuf::from(input),
            };
            if fsutil::same_contents(&own.pre(), &own.obj)? {
                fsutil::remove_if_exists(&own.pre())?;
            }
        } else {
            bail!("Unexpected input {input} for {out}");
        }
    }
    for p in new_parts.iter().chain(old_parts.iter()) {
        require(p)?;
    }
    log::action("COMBINE", &f.obj.display().to_string());
    if old_parts.is_empty() {
        return empty_diff(&f);
    }
    fsutil::remove_if_exists(&f.marker())?;
    link_objs(&f.new_code(), &new_parts)?;
    link_objs(&f.old_code(), &old_parts)?;
    fsutil::write_atomic(&f.marker(), b"1\n")
}

/// Reads an input that may be an empty archive: `Ok(None)` for an empty
/// archive, the object otherwise.
fn load_maybe_empty_archive(path: &Path) -> Result<Option<Object>> {
    let data = fsutil::read(path)?;
    if let Some(members) = crate::engine::elf::archive_members(&data) {
        let members = members.map_err(|e| anyhow!("{}: {e}", path.display()))?;
        if members == 0 {
            return Ok(None);
        }
        return Err(anyhow!(
            "{}: {}",
            path.display(),
            ObjError::Archive { members }
        ));
    }
    Object::parse(&data)
        .map(Some)
        .map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// `finalize IN OUT TARGET`.
pub fn finalize(input: &str, out: &str, target: &str) -> Result<()> {
    let (inp, outp) = (Path::new(input), Path::new(out));
    log::action("FINALIZE", input);
    let Some(obj) = load_maybe_empty_archive(inp)? else {
        return fsutil::write_atomic(outp, crate::engine::elf::AR_MAGIC);
    };
    let map = SystemMap::from_env()?;
    let fin = transform::finalize(obj, input, target, &map).map_err(|e| anyhow!("{input}: {e}"))?;
    write_object(outp, &fin)
}

/// `rmsyms IN OUT`.
pub fn rmsyms(input: &str, out: &str) -> Result<()> {
    log::action("RMSYMS", input);
    let obj = load_object(Path::new(input))?;
    let map = SystemMap::from_env()?;
    let res = transform::rmsyms(obj, input, &map).map_err(|e| anyhow!("{input}: {e}"))?;
    write_object(Path::new(out), &res)
}

/// `system_map_lookup SYMBOL`: the address as System.map writes it, or
/// nothing when the symbol is absent. `printk` is `_printk` since Linux
/// 5.15: asked for `printk` (as the Perl ksplice-create does, for kmodsrc's
/// `map_printk`), a System.map without it answers with `_printk`.
pub fn system_map_lookup(symbol: &str) -> Result<Option<String>> {
    let path = sysmap::config_path().ok_or_else(|| anyhow!("KSPLICE_CONFIG_DIR is not set"))?;
    let data = fsutil::read(&path).map_err(|e| {
        anyhow!(
            "{}: cannot read System.map: {}",
            path.display(),
            e.root_cause()
        )
    })?;
    Ok(lookup_with_alias(&String::from_utf8_lossy(&data), symbol))
}

/// `symbol`'s address in the System.map text `map`, with `printk` found as
/// `_printk` when the map has no `printk`.
fn lookup_with_alias(map: &str, symbol: &str) -> Option<String> {
    sysmap::lookup_text(map, symbol).or_else(|| match symbol {
        "printk" => sysmap::lookup_text(map, "_printk"),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::lookup_with_alias;

    #[test]
    fn printk_is_found_as_underscore_printk() {
        let map = "ffffffff81000000 T _text\nffffffff810a0b10 T _printk\n";
        assert_eq!(
            lookup_with_alias(map, "printk").as_deref(),
            Some("ffffffff810a0b10")
        );
        assert_eq!(lookup_with_alias(map, "vprintk"), None);
        let old = "ffffffff810a0000 T printk\nffffffff810a0b10 T _printk\n";
        assert_eq!(
            lookup_with_alias(old, "printk").as_deref(),
            Some("ffffffff810a0000")
        );
    }
}
