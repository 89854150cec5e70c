//! The tools' tar reader (`package::tarball`) on good and hostile archives
//! built by hand, and on the archives GNU tar writes.

mod support;

use ksplice::package::tarball::{TarCause, TarError, TempDir, unpack, unpack_gz};
use std::fs;
use std::path::PathBuf;
use support::tar::{BLOCK, entry, finish, good, gz, header, pax_record};

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

#[test]
fn refuses_the_same_path_twice() {
    for (first, second) in [
        (&b"ksplice-abc/contents"[..], &b"ksplice-abc/contents"[..]),
        (b"ksplice-abc/contents", b"ksplice-abc/./contents"),
        (b"ksplice-abc/sub/", b"ksplice-abc/sub"),
        (b"ksplice-abc/debug/a.o", b"ksplice-abc/debug/a.o"),
    ] {
        let mut t = Vec::new();
        entry(&mut t, b"ksplice-abc/", b'5', b"");
        let ty = if first.ends_with(b"/") { b'5' } else { b'0' };
        entry(&mut t, first, ty, b"one");
        entry(&mut t, second, b'0', b"two");
        let e = refused(finish(t));
        assert!(matches!(e.cause, TarCause::Duplicate), "{e}");
        assert_eq!(e.entry.as_deref().map(str::as_bytes), Some(second), "{e}");
    }
    // The top directory twice, and a long name repeating a short one.
    let mut t = Vec::new();
    entry(&mut t, b"ksplice-abc/", b'5', b"");
    entry(&mut t, b"ksplice-abc", b'5', b"");
    assert!(matches!(refused(finish(t)).cause, TarCause::Duplicate));
    let mut t = Vec::new();
    entry(&mut t, b"ksplice-abc/x", b'0', b"1");
    entry(&mut t, b"././@LongLink", b'L', b"ksplice-abc/x\0");
    entry(&mut t, b"ksplice-abc/y", b'0', b"2");
    assert!(matches!(refused(finish(t)).cause, TarCause::Duplicate));
}

/// Sizes are checked before any data is read: a header claiming more than
/// the limits is refused as too large even though no data follows it.
#[test]
fn refuses_oversize_members_before_reading_them() {
    for (name, ty, size, what) in [
        (
            &b"ksplice-abc/big.ko"[..],
            b'0',
            2u64 << 30,
            "unpacked files",
        ),
        (b"././@LongLink", b'L', 2 << 20, "metadata record"),
        (b"pax", b'x', 2 << 20, "metadata record"),
    ] {
        let mut t = Vec::new();
        entry(&mut t, b"ksplice-abc/", b'5', b"");
        t.extend_from_slice(&header(name, ty, size));
        let e = refused(finish(t));
        assert!(matches!(e.cause, TarCause::TooLarge(w) if w == what), "{e}");
        assert_eq!(e.entry.as_deref().map(str::as_bytes), Some(name), "{e}");
    }
    // The total of the files too: one byte, then a file of the limit.
    let mut t = Vec::new();
    entry(&mut t, b"ksplice-abc/", b'5', b"");
    entry(&mut t, b"ksplice-abc/small", b'0', b"1");
    t.extend_from_slice(&header(b"ksplice-abc/limit", b'0', 1 << 30));
    let e = refused(finish(t));
    assert!(
        matches!(e.cause, TarCause::TooLarge("unpacked files")),
        "{e}"
    );
    assert_eq!(e.entry.as_deref(), Some("ksplice-abc/limit"));
}

#[test]
fn refuses_pax_sizes_and_sparse_files() {
    // A pax size that disagrees with the header's.
    let mut t = Vec::new();
    entry(&mut t, b"ksplice-abc/", b'5', b"");
    entry(&mut t, b"pax", b'x', &pax_record("size", "1"));
    entry(&mut t, b"ksplice-abc/f", b'0', b"xx");
    let e = refused(finish(t));
    assert!(matches!(e.cause, TarCause::BadPax(_)), "{e}");
    assert_eq!(e.entry.as_deref(), Some("ksplice-abc/f"));
    // A malformed pax record.
    let mut t = Vec::new();
    entry(&mut t, b"ksplice-abc/", b'5', b"");
    entry(&mut t, b"pax", b'x', b"99 path=x\n");
    entry(&mut t, b"ksplice-abc/f", b'0', b"xx");
    assert!(matches!(refused(finish(t)).cause, TarCause::BadPax(_)));
    // A GNU sparse file (GNU header) and a pax one.
    let mut t = Vec::new();
    entry(&mut t, b"ksplice-abc/", b'5', b"");
    let mut h = header(b"ksplice-abc/s", b'S', 0);
    h[257..265].copy_from_slice(b"ustar  \0");
    support::tar::fix_checksum(&mut h);
    t.extend_from_slice(&h);
    let e = refused(finish(t));
    assert!(matches!(e.cause, TarCause::UnsupportedType(b'S')), "{e}");
    let mut t = Vec::new();
    entry(&mut t, b"ksplice-abc/", b'5', b"");
    entry(&mut t, b"pax", b'x', &pax_record("GNU.sparse.major", "1"));
    entry(&mut t, b"ksplice-abc/s", b'0', b"");
    let e = refused(finish(t));
    assert!(matches!(e.cause, TarCause::UnsupportedType(b'S')), "{e}");
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
