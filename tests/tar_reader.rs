//! The tools' tar reader (`package::tarball`) on good and hostile archives
//! built by hand, and on the archives GNU tar writes.

mod support;

use ksplice::package::tarball::{TarCause, TarError, TempDir, unpack, unpack_gz};
use std::fs;
use std::path::PathBuf;
use support::tar::{BLOCK, entry, finish, good, gz, pax_record};

fn try_unpack(data: &[u8]) -> (Result<PathBuf, TarError>, TempDir) {
    let d = TempDir::new().unwrap();
    (unpack_gz(data, d.path()), d)
}

fn refused(t: Vec<u8>) -> TarError {
    match try_unpack(&gz(&t)).0 {
        Ok(p) => panic!("accepted: {}", p.display()),
        Err(e) => e,
    }
}

#[test]
fn unpacks_files_and_skips_debug() {
    let (r, d) = try_unpack(&gz(&good()));
    let top = r.unwrap();
    assert_eq!(top, d.path().join("ksplice-abc"));
    assert_eq!(
        fs::read(top.join("contents")).unwrap(),
        b"core ksplice_abc x.ko\n"
    );
    assert!(!top.join("debug").exists());
}

#[test]
fn refuses_hostile_entries() {
    let cases: Vec<(&[u8], u8, &str)> = vec![
        (b"/etc/passwd", b'0', "absolute"),
        (b"ksplice-abc/../../x", b'0', ".."),
        (b"ksplice-abc/link", b'2', "symbolic link"),
        (b"ksplice-abc/hard", b'1', "hard link"),
        (b"ksplice-abc/dev", b'3', "device"),
        (b"ksplice-abc/blk", b'4', "device"),
        (b"ksplice-abc/fifo", b'6', "named pipe"),
        (b"other/file", b'0', "outside"),
        (b"ksplice-abc/sparse", b'S', "unsupported"),
    ];
    for (name, ty, want) in cases {
        let mut t = Vec::new();
        entry(&mut t, b"ksplice-abc/", b'5', b"");
        entry(&mut t, name, ty, b"x");
        let e = refused(finish(t));
        let msg = e.to_string();
        assert!(msg.contains(want), "{msg}");
        assert!(
            msg.contains(&String::from_utf8_lossy(name).to_string()),
            "{msg}"
        );
    }
}

#[test]
fn long_names_and_pax_paths_are_checked() {
    let mut t = Vec::new();
    entry(&mut t, b"././@LongLink", b'L', b"ksplice-abc/../evil\0");
    entry(&mut t, b"ksplice-abc/short", b'0', b"x");
    assert!(refused(finish(t)).to_string().contains("'..'"));

    let mut t = Vec::new();
    entry(&mut t, b"ksplice-abc/", b'5', b"");
    entry(&mut t, b"pax", b'x', &pax_record("path", "/etc/shadow"));
    entry(&mut t, b"ksplice-abc/short", b'0', b"x");
    assert!(refused(finish(t)).to_string().contains("absolute"));

    // A good long name is used.
    let long = format!("ksplice-abc/{}", "n".repeat(150));
    let mut t = Vec::new();
    entry(&mut t, b"ksplice-abc/", b'5', b"");
    entry(&mut t, b"././@LongLink", b'L', long.as_bytes());
    entry(&mut t, b"ksplice-abc/nnnn", b'0', b"data");
    let (r, d) = try_unpack(&gz(&finish(t)));
    r.unwrap();
    assert_eq!(fs::read(d.path().join(&long)).unwrap(), b"data");
}

#[test]
fn refuses_broken_archives() {
    // Not gzip.
    let (r, _d) = try_unpack(b"hello, world");
    assert!(matches!(r.unwrap_err().cause, TarCause::NotGzip));
    // Truncated data.
    let t = good();
    let e = refused(t[..BLOCK + 100].to_vec());
    assert!(matches!(e.cause, TarCause::Truncated), "{e}");
    // No end-of-archive block.
    let e = refused(t[..3 * BLOCK].to_vec());
    assert!(matches!(e.cause, TarCause::Truncated), "{e}");
    // Bad checksum.
    let mut t = good();
    t[BLOCK + 5] ^= 1;
    assert!(matches!(refused(t).cause, TarCause::BadChecksum));
    // Truncated gzip stream.
    let z = gz(&good());
    let (r, _d) = try_unpack(&z[..z.len() - 6]);
    assert!(r.is_err());
    // Empty archive.
    assert!(matches!(refused(finish(Vec::new())).cause, TarCause::Empty));
}

/// Archives written by GNU tar (gnu, pax and ustar formats) unpack.
#[test]
fn reads_gnu_tar_output() {
    let src = TempDir::new().unwrap();
    let top = src.path().join("ksplice-gnu");
    // Longer than a header's name field, short enough for ustar's prefix.
    let long = "d".repeat(80);
    fs::create_dir_all(top.join(&long)).unwrap();
    fs::write(top.join("contents"), "core ksplice_gnu ksplice-gnu.ko\n").unwrap();
    fs::write(
        top.join(&long).join(format!("{}.ko", "f".repeat(90))),
        vec![3u8; 5000],
    )
    .unwrap();
    for format in ["gnu", "pax", "ustar", "posix"] {
        let tgz = src.path().join(format!("{format}.tar.gz"));
        let st = std::process::Command::new("tar")
            .arg(format!("--format={format}"))
            .arg("-czf")
            .arg(&tgz)
            .arg("-C")
            .arg(src.path())
            .arg("ksplice-gnu")
            .stderr(std::process::Stdio::null())
            .status();
        let Ok(st) = st else {
            eprintln!("no tar: skipped");
            return;
        };
        assert!(st.success(), "tar --format={format}");
        let u = unpack(&tgz).unwrap();
        assert_eq!(u.root().file_name().unwrap(), "ksplice-gnu");
        assert_eq!(
            fs::read(u.root().join(&long).join(format!("{}.ko", "f".repeat(90)))).unwrap(),
            vec![3u8; 5000],
            "{format}"
        );
    }
}
