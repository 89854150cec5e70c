//! The command line of ksplice-obj: [`crate::obj::cli`]'s commands, with
//! the exit statuses and environment after the help.

use super::exit;
use crate::obj::cli::Cli;
use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;

/// The clap command of ksplice-obj, as it parses and as its man page and
/// completions describe it.
pub fn command() -> clap::Command {
    Cli::command().after_help(exit::OBJ.help())
}

/// Parses `args` (the program name first); an error is clap's, for
/// `--help`, `--version` and usage errors alike.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut matches = command().try_get_matches_from(args)?;
    Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obj::cli::Cmd;
    use clap::error::ErrorKind;

    #[test]
    fn commands_parse_as_before_and_version_is_an_option() {
        let cli = parse_from(["ksplice-obj", "snap", "a.o.KSPLICE"]).unwrap();
        assert!(matches!(cli.command, Cmd::Snap { marker } if marker == "a.o.KSPLICE"));
        let cli = parse_from(["ksplice-obj", "combine", "o.KSPLICE", "a", "b"]).unwrap();
        assert!(matches!(cli.command, Cmd::Combine { inputs, .. } if inputs == ["a", "b"]));
        for v in ["--version", "-V"] {
            let e = parse_from(["ksplice-obj", v]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DisplayVersion);
        }
        assert!(parse_from(["ksplice-obj", "bogus"]).is_err());
        assert!(parse_from(["ksplice-obj", "snap", "--version"]).is_err());
    }
}
