//! The man pages and shell completions of the tools in [`super::TOOLS`],
//! generated from their clap commands: what `ksplice-gen-docs` writes and
//! install.sh installs.
//!
//! A man page has clap_mangen's NAME, SYNOPSIS, DESCRIPTION and OPTIONS
//! sections, then COMMANDS (ksplice-obj's), EXIT STATUS and ENVIRONMENT
//! from the tool's [`Epilogue`], and VERSION.

use super::exit::{Epilogue, one_line};
use super::{TOOLS, Tool};
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The man page of `tool` (section 1), in roff.
pub fn man_page(tool: &Tool) -> io::Result<Vec<u8>> {
    let cmd = (tool.command)();
    let man = Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    // The title wrote roff's preamble already.
    out.extend_from_slice(commands_section(&cmd).to_roff().as_bytes());
    out.extend_from_slice(epilogue_sections(tool.epilogue).to_roff().as_bytes());
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// COMMANDS: each subcommand with its arguments and what it does (empty
/// for a tool without subcommands). clap_mangen's own section refers to a
/// page per subcommand, which these tools do not have.
fn commands_section(cmd: &clap::Command) -> Roff {
    let mut roff = Roff::new();
    let subs: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    if subs.is_empty() {
        return roff;
    }
    roff.control("SH", ["COMMANDS"]);
    for sub in subs {
        roff.control("TP", []);
        let mut line = vec![bold(sub.get_name())];
        for arg in sub.get_positionals() {
            let name = arg.get_value_names().and_then(|v| v.first()).map_or_else(
                || arg.get_id().to_string().to_uppercase(),
                |v| v.to_string(),
            );
            let more = if arg.get_num_args().is_some_and(|n| n.max_values() > 1) {
                "..."
            } else {
                ""
            };
            line.push(roman(" "));
            line.push(italic(format!("{name}{more}")));
        }
        roff.text(line);
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            roff.text([roman(about.to_string())]);
        }
    }
    roff
}

/// EXIT STATUS (one tagged paragraph per status) and ENVIRONMENT.
fn epilogue_sections(e: &Epilogue) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for s in e.exit {
        roff.control("TP", []);
        roff.text([bold(s.code.to_string())]);
        roff.text([roman(one_line(s.meaning))]);
    }
    if !e.environment.is_empty() {
        roff.control("SH", ["ENVIRONMENT"]);
        roff.text([roman(e.man_environment())]);
    }
    roff
}

/// Writes `DIR/TOOL.1` for every tool; returns the files written.
pub fn write_man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for tool in TOOLS {
        let path = dir.join(format!("{}.1", tool.name));
        write_file(&path, &man_page(tool)?)?;
        written.push(path);
    }
    Ok(written)
}

/// A shell completions are written for.
#[derive(Debug, Clone, Copy)]
pub struct ShellDir {
    /// The shell.
    pub shell: Shell,
    /// The subdirectory of the output directory for its scripts.
    pub dir: &'static str,
    /// The file name of a tool's script (the names bash-completion, zsh's
    /// fpath and fish look for).
    pub file_name: fn(&str) -> String,
}

/// The shells completions are written for.
pub const SHELLS: &[ShellDir] = &[
    ShellDir {
        shell: Shell::Bash,
        dir: "bash",
        file_name: |t| t.to_string(),
    },
    ShellDir {
        shell: Shell::Zsh,
        dir: "zsh",
        file_name: |t| format!("_{t}"),
    },
    ShellDir {
        shell: Shell::Fish,
        dir: "fish",
        file_name: |t| format!("{t}.fish"),
    },
];

/// The completion script of `tool` for `shell`.
pub fn completion(tool: &Tool, shell: Shell) -> Vec<u8> {
    let mut cmd = (tool.command)();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, tool.name, &mut out);
    out
}

/// Writes every tool's completions: `DIR/bash/TOOL`, `DIR/zsh/_TOOL` and
/// `DIR/fish/TOOL.fish`; returns the files written.
pub fn write_completions(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for s in SHELLS {
        let sub_dir = dir.join(s.dir);
        std::fs::create_dir_all(&sub_dir)?;
        for tool in TOOLS {
            let path = sub_dir.join((s.file_name)(tool.name));
            write_file(&path, &completion(tool, s.shell))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Writes `data` to `path`, naming the file in an error.
fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = std::fs::File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    f.write_all(data)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(name: &str) -> String {
        let tool = TOOLS.iter().find(|t| t.name == name).unwrap();
        String::from_utf8(man_page(tool).unwrap()).unwrap()
    }

    #[test]
    fn a_man_page_has_its_exit_statuses_and_options() {
        let apply = page("ksplice-apply");
        assert!(apply.contains(".TH ksplice-apply 1"), "{apply}");
        assert!(apply.contains(".SH \"EXIT STATUS\""), "{apply}");
        assert!(
            apply.contains("\\fB2\\fR\nthe kernel refused the update"),
            "{apply}"
        );
        assert!(apply.contains("\\-\\-partial"), "{apply}");
        assert!(apply.contains(".SH ENVIRONMENT"), "{apply}");
        assert!(!apply.contains(".SH EXTRA"), "the epilogue is not repeated");
        let obj = page("ksplice-obj");
        assert!(obj.contains(".SH COMMANDS"), "{obj}");
        assert!(
            obj.contains("\\fBcombine\\fR \\fIOUT\\fR \\fIINPUTS...\\fR"),
            "{obj}"
        );
        assert!(!obj.contains("ksplice\\-obj\\-snap(1)"), "{obj}");
        assert!(!page("ksplice-view").contains(".SH COMMANDS"));
    }

    #[test]
    fn completions_name_the_long_options() {
        let create = TOOLS.iter().find(|t| t.name == "ksplice-create").unwrap();
        for s in SHELLS {
            let text = String::from_utf8(completion(create, s.shell)).unwrap();
            assert!(text.contains("allow-layout-change"), "{}: {text}", s.dir);
        }
    }
}
