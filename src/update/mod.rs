//! An update package and the running kernel, as ksplice-apply, ksplice-undo
//! and ksplice-view see them.
//!
//! - [`Update`]: an update opened from its tarball (unpacked privately, see
//!   [`crate::package::tarball`]) or from an unpacked tree; `contents` and `utsname`
//!   are parsed and checked ([`Contents`], [`Utsname`], typed
//!   [`UpdateError`]s).
//! - [`Env`]: where the kernel is (`/sys`, `/proc`) and how modules are
//!   loaded (`insmod`, `rmmod`), each overridable from the environment so
//!   tests can fake the kernel: `KSPLICE_SYSFS`, `KSPLICE_PROC`,
//!   `KSPLICE_INSMOD`, `KSPLICE_RMMOD`, and `KSPLICE_STATE` for the records.
//! - [`Kernel`]: the update's directory `/sys/kernel/ksplice/<kid>/` (`stage`,
//!   `abort_cause`, `conflicts`, `debug`, `partial`) and module loading.
//! - [`Record`]: what ksplice-apply keeps about an applied update
//!   (`$KSPLICE_STATE/<kid>/`: description, patched functions, contents,
//!   patch), read by ksplice-view and ksplice-undo.
//! - [`Ui`]: the tools' common output conventions (progress, `-v` command
//!   echo, `--raw-errors`), abort-cause explanations, exit statuses and the
//!   shared `main` ([`tool_main`]),
//!   whose termination signals go through [`crate::util::interrupt`].

use crate::util::interrupt::{self, Interrupted};
use crate::package::tarball::{self, Unpacked};
use anyhow::{Context, Result, anyhow, bail};
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: an error; the kernel is as it was.
pub const EXIT_ERROR: u8 = 1;
/// Exit status: the kernel refused the operation (its abort cause is printed).
pub const EXIT_ABORTED: u8 = 2;
/// Exit status: interrupted by a signal; what was loaded is unloaded.
pub const EXIT_INTERRUPTED: u8 = 130;

/// True when `s` is a valid module name (`[A-Za-z0-9_]+`).
pub fn is_module_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The kernel's name for a module named in a file or by a user (`-` is `_`).
pub fn module_name(s: &str) -> String {
    s.replace('-', "_")
}

/// Why an update is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateError {
    /// The update directory is not named `ksplice-<kid>`.
    BadDirName(String),
    /// A file the update must have is missing.
    MissingFile(String),
    /// `contents` has a line of an unknown kind.
    UnknownLine {
        /// Line number (1-based).
        line: usize,
        /// The first word of the line.
        kind: String,
    },
    /// A `contents` line has the wrong number of fields.
    BadFields {
        /// Line number.
        line: usize,
        /// The kind of line.
        kind: String,
        /// Fields expected after the kind.
        expected: usize,
        /// Fields found.
        found: usize,
    },
    /// A module name is not `[A-Za-z0-9_]+`.
    BadModuleName {
        /// Line number.
        line: usize,
        /// The name.
        name: String,
    },
    /// A module of the update is not named after the update.
    ForeignModule {
        /// Line number.
        line: usize,
        /// The name.
        name: String,
        /// The update id.
        kid: String,
    },
    /// A target name is not a kernel module name (or `vmlinux`).
    BadTarget {
        /// Line number.
        line: usize,
        /// The target.
        target: String,
    },
    /// The same target is changed twice.
    DuplicateTarget {
        /// Line number.
        line: usize,
        /// The target.
        target: String,
    },
    /// A module file name is not a plain `NAME.ko`.
    BadFileName {
        /// Line number.
        line: usize,
        /// The file name.
        name: String,
    },
    /// A module file named in `contents` is not in the update.
    MissingModuleFile {
        /// Line number.
        line: usize,
        /// The file name.
        name: String,
    },
    /// More than one `core` line.
    MultipleCores {
        /// Line number of the second one.
        line: usize,
    },
    /// No `core` line.
    NoCore,
    /// No `change` line.
    NoChanges,
    /// `utsname` is not two lines.
    BadUtsname,
    /// `api-version` names another layout.
    ApiVersion {
        /// The update's version.
        found: String,
        /// The version these tools read.
        expected: String,
    },
    /// The update was built for another kernel.
    WrongKernel {
        /// The kernel the update is for.
        built: Utsname,
        /// The running kernel.
        running: Utsname,
    },
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use UpdateError::*;
        match self {
            BadDirName(n) => write!(
                f,
                "the update directory is {n:?}, not ksplice-ID (ID of letters, digits and underscores)"
            ),
            MissingFile(n) => write!(f, "the update has no {n} file"),
            UnknownLine { line, kind } => {
                write!(f, "contents line {line}: unknown kind of line {kind:?}")
            }
            BadFields {
                line,
                kind,
                expected,
                found,
            } => write!(
                f,
                "contents line {line}: a {kind} line has {expected} fields after the kind, not {found}"
            ),
            BadModuleName { line, name } => write!(
                f,
                "contents line {line}: bad module name {name:?} (letters, digits and underscores)"
            ),
            ForeignModule { line, name, kid } => write!(
                f,
                "contents line {line}: module {name} does not belong to update {kid} (ksplice_{kid}...)"
            ),
            BadTarget { line, target } => {
                write!(f, "contents line {line}: bad target name {target:?}")
            }
            DuplicateTarget { line, target } => {
                write!(f, "contents line {line}: target {target} is changed twice")
            }
            BadFileName { line, name } => {
                write!(f, "contents line {line}: bad module file name {name:?}")
            }
            MissingModuleFile { line, name } => write!(
                f,
                "contents line {line}: module file {name} is not in the update"
            ),
            MultipleCores { line } => write!(f, "contents line {line}: a second core line"),
            NoCore => write!(f, "contents has no core line"),
            NoChanges => write!(f, "contents has no change line (nothing to apply)"),
            BadUtsname => write!(
                f,
                "utsname is not two lines (kernel release and kernel version)"
            ),
            ApiVersion { found, expected } => write!(
                f,
                "update format version {found} (this tool reads version {expected}); rebuild it with this ksplice-create"
            ),
            WrongKernel { built, running } => write!(
                f,
                "the update is for kernel {} ({}), but the running kernel is {} ({})",
                built.release, built.version, running.release, running.version
            ),
        }
    }
}

impl std::error::Error for UpdateError {}

/// One changed target: its new-code and old-code modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `vmlinux` or a module name.
    pub target: String,
    /// The new-code module's name.
    pub new_module: String,
    /// The new-code module's file (in the update directory).
    pub new_file: String,
    /// The old-code module's name.
    pub old_module: String,
    /// The old-code module's file.
    pub old_file: String,
}

/// The core module of the update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Core {
    /// Its name, `ksplice_<kid>`.
    pub module: String,
    /// Its file.
    pub file: String,
}

/// The parsed `contents` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// The core module.
    pub core: Core,
    /// The changes, in file order (the order of loading).
    pub changes: Vec<Change>,
}

fn check_file_name(line: usize, name: &str) -> Result<(), UpdateError> {
    let ok = name.len() > 3
        && name.ends_with(".ko")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(UpdateError::BadFileName {
            line,
            name: name.to_string(),
        })
    }
}

impl Contents {
    /// Parses `contents` of update `kid`: `core MODULE FILE` (exactly once)
    /// and `change TARGET NEW_MODULE NEW_FILE OLD_MODULE OLD_FILE` (at least
    /// once). Module names must be `ksplice_<kid>` (core) or start with
    /// `ksplice_<kid>_`. Blank lines are ignored.
    pub fn parse(text: &str, kid: &str) -> Result<Contents, UpdateError> {
        let mut core: Option<Core> = None;
        let mut changes: Vec<Change> = Vec::new();
        let own_prefix = format!("ksplice_{kid}_");
        let module = |line: usize, name: &str, core: bool| -> Result<String, UpdateError> {
            if !is_module_name(name) {
                return Err(UpdateError::BadModuleName {
                    line,
                    name: name.to_string(),
                });
            }
            let own = if core {
                name == format!("ksplice_{kid}")
            } else {
                name.starts_with(&own_prefix) && name.len() > own_prefix.len()
            };
            if !own {
                return Err(UpdateError::ForeignModule {
                    line,
                    name: name.to_string(),
                    kid: kid.to_string(),
                });
            }
            Ok(name.to_string())
        };
        for (i, l) in text.lines().enumerate() {
            let line = i + 1;
            let words: Vec<&str> = l.split_whitespace().collect();
            let Some((&kind, args)) = words.split_first() else {
                continue;
            };
            let expect = |n: usize| {
                if args.len() == n {
                    Ok(())
                } else {
                    Err(UpdateError::BadFields {
                        line,
                        kind: kind.to_string(),
                        expected: n,
                        found: args.len(),
                    })
                }
            };
            match kind {
                "core" => {
                    expect(2)?;
                    if core.is_some() {
                        return Err(UpdateError::MultipleCores { line });
                    }
                    check_file_name(line, args[1])?;
                    core = Some(Core {
                        module: module(line, args[0], true)?,
                        file: args[1].to_string(),
                    });
                }
                "change" => {
                    expect(5)?;
                    let target = args[0];
                    if target.is_empty()
                        || !target
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        return Err(UpdateError::BadTarget {
                            line,
                            target: target.to_string(),
                        });
                    }
                    if changes
                        .iter()
                        .any(|c| module_name(&c.target) == module_name(target))
                    {
                        return Err(UpdateError::DuplicateTarget {
                            line,
                            target: target.to_string(),
                        });
                    }
                    check_file_name(line, args[2])?;
                    check_file_name(line, args[4])?;
                    changes.push(Change {
                        target: target.to_string(),
                        new_module: module(line, args[1], false)?,
                        new_file: args[2].to_string(),
                        old_module: module(line, args[3], false)?,
                        old_file: args[4].to_string(),
                    });
                }
                other => {
                    return Err(UpdateError::UnknownLine {
                        line,
                        kind: other.to_string(),
                    });
                }
            }
        }
        let core = core.ok_or(UpdateError::NoCore)?;
        if changes.is_empty() {
            return Err(UpdateError::NoChanges);
        }
        Ok(Contents { core, changes })
    }

    /// Every module file with the line that names it.
    fn files(&self, text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, l) in text.lines().enumerate() {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.first() {
                Some(&"core") if w.len() == 3 => out.push((i + 1, w[2].to_string())),
                Some(&"change") if w.len() == 6 => {
                    out.push((i + 1, w[3].to_string()));
                    out.push((i + 1, w[5].to_string()));
                }
                _ => {}
            }
        }
        out
    }
}

/// A kernel's identity as `uname -r` and `uname -v` print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utsname {
    /// The release (`6.1.0-ksplice`).
    pub release: String,
    /// The version (`#1 SMP PREEMPT_DYNAMIC ...`).
    pub version: String,
}

impl Utsname {
    /// Parses an update's `utsname`: release, then version, one per line.
    pub fn parse(text: &str) -> Result<Utsname, UpdateError> {
        let lines: Vec<&str> = text.lines().collect();
        match lines.as_slice() {
            [release, version] | [release, version, ""] => Ok(Utsname {
                release: release.to_string(),
                version: version.to_string(),
            }),
            _ => Err(UpdateError::BadUtsname),
        }
    }

    /// The running kernel's, from `PROC/sys/kernel/osrelease` and `version`.
    pub fn running(proc_root: &Path) -> Result<Utsname> {
        let read = |name: &str| -> Result<String> {
            let p = proc_root.join("sys/kernel").join(name);
            let t =
                fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
            Ok(t.trim_end_matches('\n').to_string())
        };
        Ok(Utsname {
            release: read("osrelease")?,
            version: read("version")?,
        })
    }
}

/// An update package, unpacked and checked.
#[derive(Debug)]
pub struct Update {
    /// The update directory (`.../ksplice-<kid>`).
    pub dir: PathBuf,
    /// The update id.
    pub kid: String,
    /// Its modules.
    pub contents: Contents,
    /// The kernel it was built for.
    pub utsname: Utsname,
    /// Its description, if any.
    pub description: Option<String>,
    /// The functions it changes, as (object, function), if listed.
    pub patched: Option<Vec<(String, String)>>,
    /// Keeps the private directory of an unpacked tarball alive.
    _unpacked: Option<Unpacked>,
}

impl Update {
    /// Opens an update: a tarball (unpacked into a private directory that
    /// lives as long as the value) or an unpacked update directory.
    pub fn open(path: &Path) -> Result<Update> {
        let meta =
            fs::metadata(path).with_context(|| format!("{}: cannot open", path.display()))?;
        let (dir, unpacked) = if meta.is_dir() {
            (path.to_path_buf(), None)
        } else {
            let u = tarball::unpack(path)?;
            (u.root().to_path_buf(), Some(u))
        };
        Self::load(dir, unpacked).with_context(|| path.display().to_string())
    }

    fn load(dir: PathBuf, unpacked: Option<Unpacked>) -> Result<Update> {
        let name = dir
            .canonicalize()
            .unwrap_or_else(|_| dir.clone())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kid = name
            .strip_prefix("ksplice-")
            .filter(|k| is_module_name(k))
            .ok_or_else(|| UpdateError::BadDirName(name.clone()))?
            .to_string();
        let read = |file: &str| -> Result<Option<String>> {
            let p = dir.join(file);
            match fs::metadata(&p) {
                Ok(m) if m.is_file() => Ok(Some(
                    fs::read_to_string(&p).with_context(|| format!("{file}: cannot read"))?,
                )),
                Ok(_) => bail!("{file}: not a regular file"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("{file}: cannot read")),
            }
        };
        if let Some(v) = read("api-version")? {
            let v = v.trim();
            if v != crate::create::API_VERSION {
                bail!(UpdateError::ApiVersion {
                    found: v.to_string(),
                    expected: crate::create::API_VERSION.to_string()
                });
            }
        }
        let text = read("contents")?.ok_or(UpdateError::MissingFile("contents".into()))?;
        let contents = Contents::parse(&text, &kid)?;
        for (line, f) in contents.files(&text) {
            if !dir.join(&f).is_file() {
                bail!(UpdateError::MissingModuleFile { line, name: f });
            }
        }
        let uts = read("utsname")?.ok_or(UpdateError::MissingFile("utsname".into()))?;
        let utsname = Utsname::parse(&uts)?;
        let description = read("description")?;
        let patched = read("patched")?.map(|t| parse_patched(&t));
        Ok(Update {
            dir,
            kid,
            contents,
            utsname,
            description,
            patched,
            _unpacked: unpacked,
        })
    }

    /// Checks that the update was built for the running kernel.
    pub fn check_kernel(&self, proc_root: &Path) -> Result<()> {
        let running = Utsname::running(proc_root)?;
        // An update whose build did not know the version string (no
        // utsversion.h) is checked by release only.
        let same = running.release == self.utsname.release
            && (self.utsname.version.is_empty() || running.version == self.utsname.version);
        if !same {
            bail!(UpdateError::WrongKernel {
                built: self.utsname.clone(),
                running,
            });
        }
        Ok(())
    }

    /// The path of a file of the update.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Parses a `patched` file: `<object> <function>` per line.
pub fn parse_patched(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (obj, func) = l.rsplit_once(' ')?;
            Some((obj.trim().to_string(), func.to_string()))
        })
        .collect()
}

/// The `patched` file of an update from the per-object reports (object
/// path, report JSON): the report's `patched_functions` then its
/// `new_functions`, one `<object> <function>` line each. The out-of-line
/// stubs of `static_cpu_has()` (`.altinstr_aux<from:F#N>`) are left out:
/// they change with the function `F` that uses them, which is listed.
pub fn patched_file(reports: &[(String, String)]) -> Result<String> {
    let mut out = String::new();
    for (object, text) in reports {
        let v = json::parse(text).with_context(|| format!("{object}: bad report"))?;
        for key in ["patched_functions", "new_functions"] {
            let Some(json::Value::Array(list)) = v.get(key) else {
                continue;
            };
            for e in list {
                if let Some(json::Value::String(name)) = e.get("name") {
                    if name.starts_with(".altinstr_aux<") {
                        continue;
                    }
                    let name: String = name
                        .chars()
                        .map(|c| if c.is_whitespace() { '_' } else { c })
                        .collect();
                    out.push_str(&format!("{object} {name}\n"));
                }
            }
        }
    }
    Ok(out)
}

/// Just enough JSON to read the per-object reports.
mod json {
    use anyhow::{Result, bail};

    /// A JSON value.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    impl Value {
        /// The member `key` of an object.
        pub fn get(&self, key: &str) -> Option<&Value> {
            match self {
                Value::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }
    }

    /// Parses a whole document.
    pub fn parse(text: &str) -> Result<Value> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            bail!("trailing data at byte {}", p.i);
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            }
        }

        fn eat(&mut self, c: u8) -> Result<()> {
            self.ws();
            if self.s.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                bail!("expected '{}' at byte {}", c as char, self.i)
            }
        }

        fn value(&mut self, depth: usize) -> Result<Value> {
            if depth > 64 {
                bail!("nested too deeply");
            }
            self.ws();
            match self.s.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut m = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Value::Object(m));
                    }
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.eat(b':')?;
                        m.push((k, self.value(depth + 1)?));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(Value::Object(m));
                            }
                            _ => bail!("expected ',' or '}}' at byte {}", self.i),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut a = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(Value::Array(a));
                    }
                    loop {
                        a.push(self.value(depth + 1)?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(Value::Array(a));
                            }
                            _ => bail!("expected ',' or ']' at byte {}", self.i),
                        }
                    }
                }
                Some(b'"') => Ok(Value::String(self.string()?)),
                Some(b't') if self.s[self.i..].starts_with(b"true") => {
                    self.i += 4;
                    Ok(Value::Bool(true))
                }
                Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                    self.i += 5;
                    Ok(Value::Bool(false))
                }
                Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                    self.i += 4;
                    Ok(Value::Null)
                }
                Some(c) if *c == b'-' || c.is_ascii_digit() => {
                    let start = self.i;
                    while self.i < self.s.len()
                        && matches!(
                            self.s[self.i],
                            b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                        )
                    {
                        self.i += 1;
                    }
                    let t = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                    match t.parse() {
                        Ok(n) => Ok(Value::Number(n)),
                        Err(_) => bail!("bad number at byte {start}"),
                    }
                }
                _ => bail!("unexpected input at byte {}", self.i),
            }
        }

        fn hex4(&mut self) -> Result<u32> {
            let h = self
                .s
                .get(self.i..self.i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok());
            match h {
                Some(v) => {
                    self.i += 4;
                    Ok(v)
                }
                None => bail!("bad \\u escape at byte {}", self.i),
            }
        }

        fn string(&mut self) -> Result<String> {
            if self.s.get(self.i) != Some(&b'"') {
                bail!("expected a string at byte {}", self.i);
            }
            self.i += 1;
            let mut out: Vec<u8> = Vec::new();
            loop {
                let Some(&c) = self.s.get(self.i) else {
                    bail!("unterminated string");
                };
                self.i += 1;
                match c {
                    b'"' => break,
                    b'\\' => {
                        let Some(&e) = self.s.get(self.i) else {
                            bail!("unterminated string");
                        };
                        self.i += 1;
                        let ch = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let mut v = self.hex4()?;
                                if (0xd800..0xdc00).contains(&v)
                                    && self.s.get(self.i..self.i + 2) == Some(b"\\u")
                                {
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    v = 0x10000
                                        + ((v - 0xd800) << 10)
                                        + (lo.wrapping_sub(0xdc00) & 0x3ff);
                                }
                                char::from_u32(v).unwrap_or('\u{fffd}')
                            }
                            _ => bail!("bad escape at byte {}", self.i - 1),
                        };
                        let mut b = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                    }
                    c => out.push(c),
                }
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
    }
}

/// Where the tools find the kernel, their commands and their records.
#[derive(Debug, Clone)]
pub struct Env {
    /// The sysfs root (`KSPLICE_SYSFS`, default `/sys`).
    pub sysfs: PathBuf,
    /// The procfs root (`KSPLICE_PROC`, default `/proc`).
    pub proc_root: PathBuf,
    /// The records of applied updates (`KSPLICE_STATE`, default `/var/run/ksplice`).
    pub state: PathBuf,
    /// The module loader and its leading arguments (`KSPLICE_INSMOD`, default `insmod`).
    pub insmod: Vec<String>,
    /// The module unloader (`KSPLICE_RMMOD`, default `rmmod`).
    pub rmmod: Vec<String>,
}

impl Env {
    /// The defaults, overridden by the environment variables.
    pub fn from_env() -> Result<Env> {
        let path = |var: &str, default: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(default))
        };
        let cmd = |var: &str, default: &str| -> Result<Vec<String>> {
            match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => {
                    let w = crate::util::fsutil::shell_words(&v).with_context(|| format!("${var}"))?;
                    if w.is_empty() {
                        bail!("${var} names no command");
                    }
                    Ok(w)
                }
                _ => Ok(vec![default.to_string()]),
            }
        };
        Ok(Env {
            sysfs: path("KSPLICE_SYSFS", "/sys"),
            proc_root: path("KSPLICE_PROC", "/proc"),
            state: path("KSPLICE_STATE", "/var/run/ksplice"),
            insmod: cmd("KSPLICE_INSMOD", "insmod")?,
            rmmod: cmd("KSPLICE_RMMOD", "rmmod")?,
        })
    }
}

/// The stage of an update in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Loaded, not applied.
    Preparing,
    /// Applied.
    Applied,
    /// Applied, then reversed.
    Reversed,
    /// Something these tools do not know.
    Other(String),
}

impl Stage {
    fn parse(s: &str) -> Stage {
        match s {
            "preparing" => Stage::Preparing,
            "applied" => Stage::Applied,
            "reversed" => Stage::Reversed,
            o => Stage::Other(o.to_string()),
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Preparing => write!(f, "preparing"),
            Stage::Applied => write!(f, "applied"),
            Stage::Reversed => write!(f, "reversed"),
            Stage::Other(s) => write!(f, "{s}"),
        }
    }
}

/// Output conventions shared by the tools.
#[derive(Debug, Clone)]
pub struct Ui {
    /// The tool's name, for messages.
    pub tool: &'static str,
    /// `-v` minus `-q`.
    pub verbose: i32,
    /// `--raw-errors`: machine-readable errors on stderr.
    pub raw_errors: bool,
}

impl Ui {
    /// A progress line on stdout (not with `-q`).
    pub fn progress(&self, msg: &str) {
        if self.verbose >= 0 {
            println!("{msg}");
        }
    }

    /// Prints an error: `TOOL: message` (`OTHER` and the message with `--raw-errors`).
    pub fn error(&self, e: &anyhow::Error) {
        let msg = format!("{e:#}");
        if self.raw_errors {
            eprintln!("OTHER\n{msg}");
        } else {
            eprintln!("{}: {msg}", self.tool);
        }
    }

    /// Prints a warning (not with `--raw-errors`, which keeps stderr for errors).
    pub fn warn(&self, msg: &str) {
        if !self.raw_errors {
            eprintln!("{}: warning: {msg}", self.tool);
        }
    }

    /// Prints the kernel's abort cause: the code with `--raw-errors`, else
    /// `headline` and the explanation; the processes using changed code for
    /// `code_busy`.
    pub fn abort(&self, headline: &str, cause: &str, explanation: &str, conflicts: &str) {
        if self.raw_errors {
            eprintln!("{cause}");
            if cause == "code_busy" {
                eprint!("{conflicts}");
            }
            return;
        }
        eprintln!("{}: {headline}:\n{explanation}", self.tool);
        if cause == "code_busy" {
            eprint!("{}", describe_conflicts(conflicts));
        }
    }
}

/// The `conflicts` attribute (`NAME PID SYMBOL...` per line) in words.
pub fn describe_conflicts(raw: &str) -> String {
    let mut out = String::new();
    for l in raw.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 3 {
            continue;
        }
        out.push_str(&format!(
            "Process {} (pid {}) is using code the update changes:\n",
            w[0], w[1]
        ));
        for s in &w[2..] {
            out.push_str(&format!("  {s}\n"));
        }
    }
    out
}

/// What the kernel's abort cause means when applying an update.
pub fn explain_apply(cause: &str) -> &'static str {
    match cause {
        "no_match" => {
            "The running kernel's code does not match the code the update was built against: \
             the update must be built from the exact source, configuration and compiler of the running kernel."
        }
        "code_busy" => {
            "A function the update replaces was always in use (on some thread's stack) \
             when Ksplice tried to switch to the new code; try again later."
        }
        "bad_system_map" => {
            "The System.map given to ksplice-create does not belong to the running kernel."
        }
        "failed_to_find" => "A symbol the update needs could not be found in the running kernel.",
        "already_reversed" => {
            "This update was already applied and reversed; unload its modules before applying it again."
        }
        "missing_export" => {
            "A symbol the update expects the kernel to export is not exported by the running kernel."
        }
        "unexpected_running_task" => {
            "The check of the threads' stacks failed unexpectedly; this is a bug in Ksplice."
        }
        "target_not_loaded" => {
            "A module the update changes is not loaded; use --partial to apply the update to the loaded code only."
        }
        "out_of_memory" => "The kernel ran out of memory.",
        "call_failed" => {
            "A hook of the update refused the application (likely a bug in the patch)."
        }
        "unexpected" => "The kernel's Ksplice core failed unexpectedly; this is a bug in Ksplice.",
        "ok" => {
            "The update was not applied, for no reason the kernel reported; this is a bug in Ksplice."
        }
        _ => "The kernel reported an abort cause this version of ksplice-apply does not know.",
    }
}

/// What the kernel's abort cause means when reversing an update.
pub fn explain_undo(cause: &str) -> &'static str {
    match cause {
        "code_busy" => {
            "A function the update changed was always in use (on some thread's stack) \
             when Ksplice tried to switch back to the old code; try again later."
        }
        "module_busy" => "The update's modules are in use by another module (see lsmod).",
        "unexpected_running_task" => {
            "The check of the threads' stacks failed unexpectedly; this is a bug in Ksplice."
        }
        "out_of_memory" => "The kernel ran out of memory.",
        "call_failed" => "A hook of the update refused the reversal (likely a bug in the patch).",
        "cold_update_loaded" => {
            "The update was applied with --partial and a module it changes was loaded since; \
             unload that module before undoing the update."
        }
        "already_reversed" => "The update is already reversed.",
        "unexpected" => "The kernel's Ksplice core failed unexpectedly; this is a bug in Ksplice.",
        "ok" => {
            "The update was not reversed, for no reason the kernel reported; this is a bug in Ksplice."
        }
        _ => "The kernel reported an abort cause this version of ksplice-undo does not know.",
    }
}

/// Parses the command line: `Err(status)` after printing help or version
/// (status 0) or a usage error (status 1, as the original tools).
fn parse_args<T: clap::Parser>() -> Result<T, u8> {
    match T::try_parse() {
        Ok(c) => Ok(c),
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                Err(EXIT_OK)
            } else {
                Err(EXIT_ERROR)
            }
        }
    }
}

/// The options ksplice-apply, ksplice-undo and ksplice-view share, placed
/// last in each tool's options (`#[command(flatten)]`). ksplice-view words
/// `--raw-errors`, `-v` and `-q` for itself with `mut_arg`.
#[derive(Debug, clap::Args)]
pub struct CommonOpts {
    /// Machine-readable errors on stderr: the kernel's abort code as the
    /// first line, or OTHER and a message.
    #[arg(long)]
    pub raw_errors: bool,
    /// Print the version of the update format this tool reads.
    #[arg(long)]
    pub api_version: bool,
    /// Show the commands run (repeatable).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress messages.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,
}

/// `--debug` and `--debugfile` of ksplice-apply and ksplice-undo.
#[derive(Debug, clap::Args)]
pub struct DebugOpts {
    /// On failure, print the kernel's debugging output.
    #[arg(long)]
    pub debug: bool,
    /// On failure, save the kernel's debugging output to FILE (implies
    /// --debug).
    #[arg(long, value_name = "FILE")]
    pub debugfile: Option<PathBuf>,
}

impl DebugOpts {
    /// Whether the kernel's debugging output is wanted on failure.
    pub fn wanted(&self) -> bool {
        self.debug || self.debugfile.is_some()
    }
}

/// The `main` of an update tool: parses the command line (`common` gives
/// its [`CommonOpts`]), answers `--api-version`, then runs `run` and maps
/// its result to the exit status
/// (an error prints `TOOL: message` and exits 1). With `on_interrupt`, a
/// termination signal sets the interrupt flag instead of killing the tool,
/// and a run that ends with [`Interrupted`] prints "interrupted;
/// `on_interrupt`" and exits 130.
pub fn tool_main<C: clap::Parser>(
    tool: &'static str,
    common: fn(&C) -> &CommonOpts,
    on_interrupt: Option<&str>,
    run: fn(&C, &Ui) -> Result<u8>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let cli = match parse_args::<C>() {
        Ok(c) => c,
        Err(code) => return ExitCode::from(code),
    };
    let opts = common(&cli);
    if opts.api_version {
        println!("{}", crate::create::API_VERSION);
        return ExitCode::SUCCESS;
    }
    let ui = Ui {
        tool,
        verbose: i32::from(opts.verbose) - i32::from(opts.quiet),
        raw_errors: opts.raw_errors,
    };
    if on_interrupt.is_some() {
        interrupt::install_handler();
    }
    let code = match run(&cli, &ui) {
        Ok(c) => c,
        Err(e) => match on_interrupt.filter(|_| e.downcast_ref::<Interrupted>().is_some()) {
            Some(what) => {
                ui.error(&anyhow!("interrupted; {what}"));
                EXIT_INTERRUPTED
            }
            None => {
                ui.error(&e);
                EXIT_ERROR
            }
        },
    };
    ExitCode::from(code)
}

/// The exit statuses of ksplice-apply, for `--help`.
pub const EXIT_STATUS_HELP: &str = "Exit status:
  0    applied (or already applied)
  1    error (bad update, wrong kernel, a module failed to load, bad usage);
       the modules loaded so far are unloaded
  2    the kernel refused the update (the reason is printed); its modules
       are unloaded
  130  interrupted; the modules loaded so far are unloaded

Environment (for testing): KSPLICE_SYSFS (/sys), KSPLICE_PROC (/proc),
KSPLICE_STATE (/var/run/ksplice), KSPLICE_INSMOD (insmod), KSPLICE_RMMOD (rmmod).";

/// The exit statuses of ksplice-undo, for `--help`.
pub const UNDO_EXIT_STATUS_HELP: &str = "Exit status:
  0    reversed and unloaded
  1    error (not applied, not present, a module could not be unloaded,
       bad usage)
  2    the kernel refused to reverse the update (the reason is printed);
       it stays applied
  130  interrupted before reversing; nothing changed (once the reversal
       has started, a signal waits for the modules to be unloaded)

Environment (for testing): KSPLICE_SYSFS (/sys), KSPLICE_STATE
(/var/run/ksplice), KSPLICE_RMMOD (rmmod).";

/// The running kernel: the Ksplice sysfs directories and module loading.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// Where things are.
    pub env: Env,
    /// How to talk.
    pub ui: Ui,
}

/// The largest attribute read (sysfs attributes are at most a page).
const MAX_ATTR: u64 = 1 << 16;

impl Kernel {
    /// `/sys/kernel/ksplice`.
    pub fn updates_dir(&self) -> PathBuf {
        self.env.sysfs.join("kernel/ksplice")
    }

    /// `/sys/kernel/ksplice/<kid>`.
    pub fn update_dir(&self, kid: &str) -> PathBuf {
        self.updates_dir().join(kid)
    }

    /// True when the update `kid` is registered with the kernel (never for
    /// a `kid` that is not a module name, such as a path).
    pub fn update_present(&self, kid: &str) -> bool {
        is_module_name(kid) && self.update_dir(kid).is_dir()
    }

    /// Reads an attribute of the update (whitespace trimmed).
    pub fn read_attr(&self, kid: &str, attr: &str) -> Result<String> {
        let p = self.update_dir(kid).join(attr);
        let mut buf = Vec::new();
        fs::File::open(&p)
            .and_then(|f| f.take(MAX_ATTR).read_to_end(&mut buf))
            .with_context(|| format!("{}: cannot read", p.display()))?;
        Ok(String::from_utf8_lossy(&buf).trim().to_string())
    }

    /// Writes `word` to an attribute of the update. The file is opened
    /// write-only, never created or truncated, and the word is written in
    /// one `write` without a newline, as sysfs expects.
    pub fn write_attr(&self, kid: &str, attr: &str, word: &str) -> std::io::Result<()> {
        let p = self.update_dir(kid).join(attr);
        if self.ui.verbose >= 1 {
            println!("+ echo {word} > {}", p.display());
        }
        let mut f = fs::OpenOptions::new().write(true).open(&p)?;
        f.write_all(word.as_bytes())
    }

    /// The update's stage, `None` when the update is not in the kernel.
    pub fn stage(&self, kid: &str) -> Result<Option<Stage>> {
        if !self.update_present(kid) {
            return Ok(None);
        }
        Ok(Some(Stage::parse(&self.read_attr(kid, "stage")?)))
    }

    /// The update's abort cause (`unexpected` when it cannot be read).
    pub fn abort_cause(&self, kid: &str) -> String {
        self.read_attr(kid, "abort_cause")
            .ok()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "unexpected".to_string())
    }

    /// The update's `conflicts` (empty when it cannot be read).
    pub fn conflicts(&self, kid: &str) -> String {
        let p = self.update_dir(kid).join("conflicts");
        fs::read_to_string(p).unwrap_or_default()
    }

    /// The updates the kernel knows, sorted.
    pub fn updates(&self) -> Result<Vec<String>> {
        let dir = self.updates_dir();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot list", dir.display())),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.with_context(|| format!("{}: cannot list", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() && is_module_name(&name) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// True when module `name` is loaded (`/sys/module/<name>` exists).
    pub fn module_loaded(&self, name: &str) -> bool {
        self.env
            .sysfs
            .join("module")
            .join(module_name(name))
            .is_dir()
    }

    /// Loaded modules whose names start with `prefix` and end with `suffix`, sorted.
    pub fn modules_matching(&self, prefix: &str, suffix: &str) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(self.env.sysfs.join("module"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix) && n.ends_with(suffix) && n.len() > prefix.len())
            .collect();
        out.sort();
        out
    }

    /// The loaded modules of update `kid`, in the order to unload them: its
    /// change modules (`ksplice_<kid>_*`, reverse sorted), then its core.
    pub fn update_modules(&self, kid: &str) -> Vec<String> {
        let mut m = self.modules_matching(&format!("ksplice_{kid}_"), "");
        m.reverse();
        let core = format!("ksplice_{kid}");
        if self.module_loaded(&core) {
            m.push(core);
        }
        m
    }

    /// The module's reference count, when the kernel shows it.
    pub fn module_refcount(&self, name: &str) -> Option<u64> {
        let p = self.env.sysfs.join("module").join(name).join("refcnt");
        fs::read_to_string(p).ok()?.trim().parse().ok()
    }

    fn run(&self, cmd: &[String], arg: &str) -> Result<()> {
        let (prog, args) = cmd
            .split_first()
            .ok_or_else(|| anyhow!("no command configured"))?;
        if self.ui.verbose >= 1 {
            println!("+ {} {arg}", cmd.join(" "));
        }
        // Nothing here opens /dev/null: an initramfs may have no /dev.
        let mut c = Command::new(prog);
        c.args(args).arg(arg);
        let st = if self.ui.raw_errors {
            // stderr is kept for the machine-readable lines: the command's
            // complaints are captured and dropped.
            c.stdout(Stdio::inherit()).stderr(Stdio::piped());
            c.output().map(|o| o.status)
        } else {
            c.status()
        }
        .with_context(|| format!("cannot run {prog}"))?;
        if st.success() {
            return Ok(());
        }
        use std::os::unix::process::ExitStatusExt;
        let line = format!("{} {arg}", cmd.join(" "));
        match (st.code(), st.signal()) {
            (Some(code), _) => bail!("{line} failed (exit status {code})"),
            (None, Some(sig)) => bail!("{line} was killed by signal {sig}"),
            _ => bail!("{line} failed"),
        }
    }

    /// Loads a module file.
    pub fn insmod(&self, file: &Path) -> Result<()> {
        self.run(&self.env.insmod, &file.to_string_lossy())
    }

    /// Unloads a module by name.
    pub fn rmmod(&self, name: &str) -> Result<()> {
        self.run(&self.env.rmmod, name)
    }

    /// The update's `debug` trace, copied to `file` (its path is printed) or
    /// printed; failures are warnings.
    pub fn save_debug(&self, kid: &str, file: Option<&Path>) {
        let p = self.update_dir(kid).join("debug");
        let text = match fs::read(&p) {
            Ok(t) => t,
            Err(e) => {
                self.ui.warn(&format!(
                    "{}: cannot read the debugging output: {e}",
                    p.display()
                ));
                return;
            }
        };
        match file {
            Some(f) => match fs::write(f, &text) {
                Ok(()) => println!("Debugging output saved to {}", f.display()),
                Err(e) => self.ui.warn(&format!("{}: cannot write: {e}", f.display())),
            },
            None => {
                println!("Debugging output of update {kid}:");
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&text);
                if !text.ends_with(b"\n") {
                    let _ = out.write_all(b"\n");
                }
            }
        }
    }
}

/// What ksplice-apply keeps about an applied update, in `STATE/<kid>/`.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// The update's description.
    pub description: Option<String>,
    /// The functions it changes.
    pub patched: Option<Vec<(String, String)>>,
    /// Its modules (when `contents` is recorded and readable).
    pub contents: Option<Contents>,
    /// The source patch.
    pub patch: Option<String>,
}

/// The files of an update a record keeps.
const RECORDED: &[&str] = &["description", "patched", "contents", "patch"];

impl Record {
    /// The record directory of `kid`.
    pub fn dir(state: &Path, kid: &str) -> PathBuf {
        state.join(kid)
    }

    /// Records `update` as applied (replacing an older record).
    pub fn save(state: &Path, update: &Update) -> Result<()> {
        let dir = Self::dir(state, &update.kid);
        let tmp = state.join(format!(".{}.tmp", update.kid));
        let res = (|| -> Result<()> {
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir_all(&tmp)?;
            for f in RECORDED {
                let src = update.file(f);
                if src.is_file() {
                    fs::copy(&src, tmp.join(f))?;
                }
            }
            if dir.exists() {
                fs::remove_dir_all(&dir)?;
            }
            fs::rename(&tmp, &dir)?;
            Ok(())
        })();
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        res.with_context(|| format!("{}: cannot record the update", dir.display()))
    }

    /// The record of `kid`, `None` when there is none.
    pub fn load(state: &Path, kid: &str) -> Option<Record> {
        let dir = Self::dir(state, kid);
        if !dir.is_dir() {
            return None;
        }
        let read = |f: &str| fs::read_to_string(dir.join(f)).ok();
        Some(Record {
            description: read("description"),
            patched: read("patched").map(|t| parse_patched(&t)),
            contents: read("contents").and_then(|t| Contents::parse(&t, kid).ok()),
            patch: read("patch"),
        })
    }

    /// Removes the record of `kid`, if any.
    pub fn remove(state: &Path, kid: &str) -> Result<()> {
        let dir = Self::dir(state, kid);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("{}: cannot remove", dir.display())),
        }
    }
}

/// The first line of a description, or the text ksplice-view shows without one.
pub fn short_description(d: Option<&str>) -> String {
    d.and_then(|d| d.lines().find(|l| !l.trim().is_empty()))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "no description available".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KID: &str = "abc";

    fn good() -> String {
        "change vmlinux ksplice_abc_vmlinux_new ksplice-abc_vmlinux-new.ko ksplice_abc_vmlinux_old ksplice-abc_vmlinux-old.ko\n\
         change kobject_example ksplice_abc_kobject_example_new ksplice-abc_kobject_example-new.ko ksplice_abc_kobject_example_old ksplice-abc_kobject_example-old.ko\n\
         core ksplice_abc ksplice-abc.ko\n"
            .to_string()
    }

    #[test]
    fn parses_contents() {
        let c = Contents::parse(&good(), KID).unwrap();
        assert_eq!(c.core.module, "ksplice_abc");
        assert_eq!(c.core.file, "ksplice-abc.ko");
        assert_eq!(c.changes.len(), 2);
        assert_eq!(c.changes[1].target, "kobject_example");
        assert_eq!(c.changes[0].old_file, "ksplice-abc_vmlinux-old.ko");
        assert_eq!(c.files(&good()).len(), 5);
    }

    #[test]
    fn refuses_bad_contents() {
        use UpdateError::*;
        let p = |t: &str| Contents::parse(t, KID).unwrap_err();
        assert!(matches!(p("frobnicate x\n"), UnknownLine { line: 1, .. }));
        assert!(matches!(
            p("core ksplice_abc\n"),
            BadFields { found: 1, .. }
        ));
        assert_eq!(p("core ksplice_abc a.ko\n"), NoChanges);
        assert_eq!(
            p("change vmlinux ksplice_abc_n n.ko ksplice_abc_o o.ko\n"),
            NoCore
        );
        assert!(matches!(
            p("core ksplice_abc a.ko\ncore ksplice_abc a.ko\n"),
            MultipleCores { line: 2 }
        ));
        assert!(matches!(p("core ksplice-abc a.ko\n"), BadModuleName { .. }));
        assert!(matches!(p("core ksplice_xyz a.ko\n"), ForeignModule { .. }));
        assert!(matches!(
            p("core ksplice_abc ../a.ko\n"),
            BadFileName { .. }
        ));
        assert!(matches!(p("core ksplice_abc a.o\n"), BadFileName { .. }));
        assert!(matches!(
            p("core ksplice_abc a.ko\nchange vm/linux ksplice_abc_n n.ko ksplice_abc_o o.ko\n"),
            BadTarget { .. }
        ));
        assert!(matches!(
            p(
                "core ksplice_abc a.ko\nchange vmlinux ksplice_abc_n n.ko ksplice_abc_o o.ko\nchange vmlinux ksplice_abc_n2 n.ko ksplice_abc_o2 o.ko\n"
            ),
            DuplicateTarget { line: 3, .. }
        ));
        assert!(matches!(
            p("core ksplice_abc a.ko\nchange vmlinux ksplice_abc_ n.ko ksplice_abc_o o.ko\n"),
            ForeignModule { .. }
        ));
    }

    #[test]
    fn parses_utsname() {
        let u = Utsname::parse("6.1.0\n#1 SMP PREEMPT_DYNAMIC Mon\n").unwrap();
        assert_eq!(u.release, "6.1.0");
        assert_eq!(u.version, "#1 SMP PREEMPT_DYNAMIC Mon");
        assert_eq!(Utsname::parse("6.1.0\n"), Err(UpdateError::BadUtsname));
        assert_eq!(Utsname::parse("a\nb\nc\n"), Err(UpdateError::BadUtsname));
        let m = UpdateError::WrongKernel {
            built: u.clone(),
            running: Utsname {
                release: "6.1.1".into(),
                version: "#2".into(),
            },
        }
        .to_string();
        assert!(
            m.contains("6.1.0") && m.contains("6.1.1") && m.contains("#2"),
            "{m}"
        );
    }

    #[test]
    fn patched_list_from_reports() {
        let r = crate::engine::report::Report {
            object: "kernel/sys.o".into(),
            patched_functions: vec![
                crate::engine::report::Entry {
                    name: ".altinstr_aux<from:do_sys<kernel/sys.o>#0>".into(),
                    section: ".altinstr_aux".into(),
                    reason: Some("differing bytes at offset 0x1".into()),
                    offset: Some(1),
                },
                crate::engine::report::Entry {
                    name: "do_sys \"x\"".into(),
                    section: ".text.do_sys".into(),
                    reason: Some("differing bytes at offset 0x4".into()),
                    offset: Some(4),
                },
            ],
            new_functions: vec![crate::engine::report::Entry {
                name: "helper".into(),
                section: ".text.helper".into(),
                reason: None,
                offset: None,
            }],
            ..Default::default()
        };
        let text = patched_file(&[("kernel/sys.o".to_string(), r.json())]).unwrap();
        assert_eq!(text, "kernel/sys.o do_sys_\"x\"\nkernel/sys.o helper\n");
        assert_eq!(
            parse_patched(&text),
            vec![
                ("kernel/sys.o".to_string(), "do_sys_\"x\"".to_string()),
                ("kernel/sys.o".to_string(), "helper".to_string())
            ]
        );
        assert!(patched_file(&[("x.o".into(), "{\"a\": [".into())]).is_err());
    }

    #[test]
    fn json_subset() {
        let v = json::parse(
            r#"{"a": [1, -2.5e3, true, false, null, "\u00e9\n\ud83d\ude00"], "b": {}}"#,
        )
        .unwrap();
        let Some(json::Value::Array(a)) = v.get("a") else {
            panic!()
        };
        assert_eq!(a[5], json::Value::String("é\n😀".into()));
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "\"abc", "[1] x", "tru"] {
            assert!(json::parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(1000);
        assert!(json::parse(&deep).is_err());
    }

    #[test]
    fn explanations_cover_every_cause() {
        for c in [
            "no_match",
            "code_busy",
            "bad_system_map",
            "failed_to_find",
            "already_reversed",
            "missing_export",
            "unexpected_running_task",
            "target_not_loaded",
            "out_of_memory",
            "call_failed",
            "unexpected",
            "ok",
        ] {
            assert_ne!(explain_apply(c), explain_apply("no_such_cause"), "{c}");
        }
        assert!(explain_apply("target_not_loaded").contains("--partial"));
        assert_ne!(explain_undo("code_busy"), explain_undo("no_such_cause"));
        assert!(describe_conflicts("bash 42 do_sys other\nidle 0\n").contains("bash (pid 42)"));
    }
}
