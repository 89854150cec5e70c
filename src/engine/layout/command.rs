//! The debug-info compile command of an object, from its Kbuild `.cmd` file.

use std::fmt;

/// Why a Kbuild command could not be turned into a debug-info compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The `.cmd` file has no `cmd_<object> :=` line.
    NoCommand(String),
    /// The command could not be split into words.
    Quoting(String),
    /// The command has no `-o <object>`.
    NoOutput(String),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NoCommand(o) => write!(f, "no 'cmd_{o} :=' or 'savedcmd_{o} :=' line"),
            CommandError::Quoting(e) => write!(f, "cannot split the command: {e}"),
            CommandError::NoOutput(o) => write!(f, "the command has no '-o {o}'"),
        }
    }
}

impl std::error::Error for CommandError {}

/// Options of a Kbuild command the debug compile leaves out: dependency
/// output, and whatever would take the DWARF away or elsewhere.
fn dropped(w: &str) -> bool {
    w.starts_with("-Wp,-MMD,")
        || w.starts_with("-Wp,-MD,")
        || w == "-g0"
        || w == "-gsplit-dwarf"
        || w.starts_with("-gz")
        || w.starts_with("-femit-struct-debug")
}

/// The compile command Kbuild used for `object` (relative to the objtree),
/// from the text of its `.<name>.o.cmd` file, rewritten to write `out` with
/// DWARF 4 debug information and nothing else: a leading `ksplice-cc` and
/// `-Wp,-MMD,<file>` are dropped, as are `-g0`, split DWARF, compressed
/// debug sections and reduced struct debug information; `-o <object>`
/// becomes `-o <out>`; anything after the compiler command (`; objtool
/// ...`) is dropped. Make's escapes (`$$`, `$(pound)`) are undone.
pub fn debug_compile_command(
    cmd_file: &str,
    object: &str,
    out: &str,
) -> Result<Vec<String>, CommandError> {
    // Linux 6.1 writes `cmd_OBJ :=` (and `savedcmd_OBJ :=` for some
    // targets); 6.12 writes `savedcmd_OBJ :=` only.
    let key = format!("cmd_{object} :=");
    let saved = format!("savedcmd_{object} :=");
    let line = cmd_file
        .lines()
        .find_map(|l| l.strip_prefix(&key).or_else(|| l.strip_prefix(&saved)))
        .ok_or_else(|| CommandError::NoCommand(object.to_string()))?;
    let line = line.replace("$(pound)", "#").replace("$$", "$");
    let words = crate::util::fsutil::shell_words(&line)
        .map_err(|e| CommandError::Quoting(format!("{e:#}")))?;
    let mut cmd: Vec<String> = Vec::new();
    let mut it = words.into_iter().peekable();
    if it
        .peek()
        .is_some_and(|w| w == "ksplice-cc" || w.ends_with("/ksplice-cc"))
    {
        it.next();
    }
    let mut saw_output = false;
    while let Some(w) = it.next() {
        if matches!(w.as_str(), ";" | "&&" | "||" | "|") {
            break;
        }
        let (w, last) = match w.strip_suffix(';') {
            Some(s) => (s.to_string(), true),
            None => (w, false),
        };
        if w == "-o" {
            match it.next() {
                Some(o) => {
                    let o = o.strip_suffix(';').unwrap_or(&o).to_string();
                    if o == object || o.trim_start_matches("./") == object {
                        saw_output = true;
                        cmd.push("-o".into());
                        cmd.push(out.to_string());
                    } else {
                        return Err(CommandError::NoOutput(object.to_string()));
                    }
                }
                None => return Err(CommandError::NoOutput(object.to_string())),
            }
        } else if !w.is_empty() && !dropped(&w) {
            cmd.push(w);
        }
        if last {
            break;
        }
    }
    if !saw_output {
        return Err(CommandError::NoOutput(object.to_string()));
    }
    cmd.extend(["-g", "-gdwarf-4", "-gz=none"].map(String::from));
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kbuild_command_becomes_a_debug_compile() {
        let cmd = "savedcmd_x := y\ncmd_fs/proc/meminfo.o := ksplice-cc gcc -Wp,-MMD,fs/proc/.meminfo.o.d -nostdinc -g0 -gz=zlib -DKBUILD_MODFILE='\"fs/proc/proc\"' -DX='$$a' -DY=$(pound)1 -c -o fs/proc/meminfo.o /src/fs/proc/meminfo.c   ; ./tools/objtool/objtool --hacks=jump_label fs/proc/meminfo.o\n\nsource_fs/proc/meminfo.o := /src/fs/proc/meminfo.c\n";
        let c = debug_compile_command(cmd, "fs/proc/meminfo.o", "/tmp/x/after.o").unwrap();
        assert_eq!(
            c,
            vec![
                "gcc",
                "-nostdinc",
                "-DKBUILD_MODFILE=\"fs/proc/proc\"",
                "-DX=$a",
                "-DY=#1",
                "-c",
                "-o",
                "/tmp/x/after.o",
                "/src/fs/proc/meminfo.c",
                "-g",
                "-gdwarf-4",
                "-gz=none",
            ]
        );
        assert_eq!(
            debug_compile_command(cmd, "fs/proc/other.o", "o"),
            Err(CommandError::NoCommand("fs/proc/other.o".into()))
        );
        assert_eq!(
            debug_compile_command("cmd_a.o := gcc -c a.c", "a.o", "o"),
            Err(CommandError::NoOutput("a.o".into()))
        );
        assert!(matches!(
            debug_compile_command("cmd_a.o := gcc '-c a.c -o a.o", "a.o", "o"),
            Err(CommandError::Quoting(_))
        ));
    }

    #[test]
    fn linux_6_12_saved_commands_are_read() {
        let cmd = "savedcmd_kernel/sys.o := gcc -Wp,-MMD,kernel/.sys.o.d -O2 -c -o kernel/sys.o kernel/sys.c\n";
        let c = debug_compile_command(cmd, "kernel/sys.o", "out.o").unwrap();
        assert_eq!(c[..4], ["gcc", "-O2", "-c", "-o"]);
        assert_eq!(c[4], "out.o");
        assert_eq!(
            debug_compile_command(cmd, "kernel/sy.o", "o"),
            Err(CommandError::NoCommand("kernel/sy.o".into()))
        );
    }
}
