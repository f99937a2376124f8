use super::*;
use proptest::prelude::*;
use std::fs::{self, File};

fn bm(name: &str, address: &str) -> Bookmark {
    Bookmark {
        name: name.to_owned(),
        address: address.to_owned(),
        cluster_key: PathBuf::from(format!("/keys/{name}.cluster")),
        operator_key: None,
    }
}

fn file_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("meshdeck").join(FILE_NAME)
}

/// Writes `bytes` at `path` (creating the directory), loads, and checks the
/// file was moved aside intact; returns the reason and where it went.
fn assert_moved_aside(path: &Path, bytes: &[u8]) -> (String, PathBuf) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    match Bookmarks::load(path).unwrap() {
        LoadOutcome::Corrupt { bookmarks, moved_to, error } => {
            assert!(bookmarks.items.is_empty());
            assert_eq!(bookmarks.path, path);
            assert!(!path.exists(), "the original path still exists");
            assert_eq!(fs::read(&moved_to).unwrap(), bytes, "moved bytes differ");
            assert_eq!(moved_to.parent(), path.parent());
            let name = moved_to.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with("bookmarks.toml.corrupt-"), "{name}");
            (error, moved_to)
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn save_then_load_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    let mut marks = Bookmarks::new(&path);
    marks.upsert(bm("lab", "127.0.0.1:7000"));
    marks.upsert(Bookmark {
        operator_key: Some(PathBuf::from("/keys/alice \"quoted\" \\ key")),
        ..bm("prod \u{e9}ast", "[::1]:7001")
    });
    marks.upsert(bm("edge", "node-3.example.internal:65535"));
    marks.save().unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("[[cluster]]"), "{text}");
    assert_eq!(Bookmarks::load(&path).unwrap(), LoadOutcome::Loaded(marks.clone()));
    // Saving again over an existing file works and leaves no temporary files.
    marks.remove("edge");
    marks.save().unwrap();
    assert_eq!(Bookmarks::load(&path).unwrap(), LoadOutcome::Loaded(marks));
    let names: Vec<_> =
        fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![OsString::from(FILE_NAME)]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn an_empty_list_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    Bookmarks::new(&path).save().unwrap();
    assert_eq!(Bookmarks::load(&path).unwrap(), LoadOutcome::Loaded(Bookmarks::new(&path)));
}

#[test]
fn the_documented_format_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = "[[cluster]]\nname = \"lab\"\naddress = \"127.0.0.1:7000\"\n\
                cluster_key = \"/path/cluster.key\"\noperator_key = \"/path/alice.key\"   # optional\n\n\
                [[cluster]]\nname = \"b\"\naddress = \"b.local:9\"\ncluster_key = \"c.key\"\n";
    fs::write(&path, text).unwrap();
    let loaded = Bookmarks::load(&path).unwrap().into_bookmarks();
    assert_eq!(
        loaded.items,
        vec![
            Bookmark {
                operator_key: Some(PathBuf::from("/path/alice.key")),
                cluster_key: PathBuf::from("/path/cluster.key"),
                ..bm("lab", "127.0.0.1:7000")
            },
            Bookmark { cluster_key: PathBuf::from("c.key"), ..bm("b", "b.local:9") },
        ]
    );
    // A byte order mark (some editors add one) is fine.
    fs::write(&path, format!("\u{feff}{text}")).unwrap();
    assert_eq!(Bookmarks::load(&path).unwrap().into_bookmarks(), loaded);
}

#[test]
fn upsert_replaces_by_name_and_remove_and_find() {
    let mut marks = Bookmarks::new("/x/bookmarks.toml");
    marks.upsert(bm("a", "a:1"));
    marks.upsert(bm("b", "b:2"));
    marks.upsert(bm("a", "a2:3"));
    assert_eq!(marks.items, vec![bm("a", "a2:3"), bm("b", "b:2")]);
    assert_eq!(marks.find("a"), Some(&bm("a", "a2:3")));
    assert_eq!(marks.find("A"), None);
    assert!(marks.remove("a"));
    assert!(!marks.remove("a"));
    assert_eq!(marks.items, vec![bm("b", "b:2")]);
    assert_eq!(marks.find("a"), None);
}

#[test]
fn missing_file_is_empty_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    let outcome = Bookmarks::load(&path).unwrap();
    assert_eq!(outcome, LoadOutcome::Missing(Bookmarks::new(&path)));
    assert_eq!(outcome.notice(), None);
    assert!(!path.exists());
    assert!(!path.parent().unwrap().exists(), "load created the directory");
}

#[test]
fn corrupt_files_are_moved_aside_with_a_reason() {
    let good = "[[cluster]]\nname = \"lab\"\naddress = \"127.0.0.1:7000\"\ncluster_key = \"/k\"\n";
    let cases: &[(&[u8], &[&str])] = &[
        (b"\x00\xffgarbage\n[[[", &["line 1, column 2", "UTF-8"]),
        (b"this is = = not toml\n", &["line 1"]),
        (b"[[cluster]]\nname = 5\naddress = \"h:1\"\ncluster_key = \"/k\"\n", &["line 2"]),
        (b"cluster = \"lab\"\n", &["line 1"]),
        (b"[[cluster]]\nname = \"  \"\naddress = \"h:1\"\ncluster_key = \"/k\"\n", &["line 2, column 8", "non-blank name"]),
        (b"[[cluster]]\nname = \"lab\"\naddress = \"127.0.0.1\"\ncluster_key = \"/k\"\n", &["line 3, column 11", "no port"]),
        (b"[[cluster]]\nname = \"lab\"\naddress = \"host:\"\ncluster_key = \"/k\"\n", &["line 3", "not a number"]),
        (b"[[cluster]]\nname = \"lab\"\naddress = \"h:1\"\n", &["cluster_key"]),
        (b"[[cluster]]\nname = \"lab\"\naddress = \"h:1\"\ncluster_key = \"/k\"\noperator-key = \"/o\"\n", &["line 5", "operator-key"]),
    ];
    for (bytes, needles) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (error, _) = assert_moved_aside(&file_in(&dir), bytes);
        for needle in *needles {
            assert!(
                error.contains(needle),
                "{error:?} lacks {needle:?} for {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
    // Duplicate names: the second is at fault, the first is named.
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    let (error, moved_to) = assert_moved_aside(&path, format!("{good}\n{good}").as_bytes());
    assert!(error.contains("line 7, column 8") && error.contains("first at line 2"), "{error}");
    assert!(moved_to.exists());
    // The notice for the user names both files.
    fs::write(&path, "x").unwrap();
    let notice = Bookmarks::load(&path).unwrap().notice().unwrap();
    assert!(
        notice.contains(&path.display().to_string()) && notice.contains(".corrupt-"),
        "{notice}"
    );
}

#[test]
fn a_file_over_one_mib_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"# padding\n".repeat((MAX_BOOKMARKS_FILE as usize) / 10 + 1);
    bytes.truncate(MAX_BOOKMARKS_FILE as usize + 1);
    let (error, _) = assert_moved_aside(&file_in(&dir), &bytes);
    assert!(error.contains("1048577 bytes"), "{error}");
    // Exactly 1 MiB is still read.
    let path = file_in(&dir);
    bytes.truncate(MAX_BOOKMARKS_FILE as usize);
    fs::write(&path, &bytes).unwrap();
    assert!(
        matches!(Bookmarks::load(&path).unwrap(), LoadOutcome::Loaded(b) if b.items.is_empty())
    );
}

#[test]
fn a_second_corrupt_file_does_not_overwrite_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    let (_, first) = assert_moved_aside(&path, b"first [");
    let (_, second) = assert_moved_aside(&path, b"second [");
    assert_ne!(first, second);
    assert_eq!(fs::read(&first).unwrap(), b"first [");
    assert_eq!(fs::read(&second).unwrap(), b"second [");
    // The same millisecond: the next free suffix.
    for (i, bytes) in [b"third", b"forth", b"fifth"].iter().enumerate() {
        fs::write(&path, bytes).unwrap();
        let to = move_aside(&path, 42).unwrap();
        let suffix = if i == 0 { String::new() } else { format!("-{i}") };
        assert_eq!(to, path.with_file_name(format!("bookmarks.toml.corrupt-42{suffix}")));
        assert_eq!(fs::read(&to).unwrap(), *bytes);
        assert!(!path.exists());
    }
    assert_eq!(fs::read(path.with_file_name("bookmarks.toml.corrupt-42")).unwrap(), b"third");
}

#[test]
fn a_directory_at_the_path_is_an_error_and_stays() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    fs::create_dir_all(&path).unwrap();
    let err = Bookmarks::load(&path).unwrap_err();
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    assert!(path.is_dir());
}

#[cfg(unix)]
#[test]
fn an_unreadable_file_is_an_error_and_stays() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "not [ toml").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    if File::open(&path).is_ok() {
        return; // Running as root: permissions do not stop reads.
    }
    let err = Bookmarks::load(&path).unwrap_err();
    assert!(matches!(err, BookmarkError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"not [ toml");
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
}

#[cfg(unix)]
#[test]
fn save_keeps_a_symlink_and_writes_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("dotfiles").join("bookmarks.toml");
    fs::create_dir_all(real.parent().unwrap()).unwrap();
    fs::write(&real, "").unwrap();
    let path = file_in(&dir);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&real, &path).unwrap();
    let mut marks = Bookmarks::load(&path).unwrap().into_bookmarks();
    marks.upsert(bm("lab", "h:1"));
    marks.save().unwrap();
    assert!(fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    assert!(fs::read_to_string(&real).unwrap().contains("\"lab\""));
    assert_eq!(Bookmarks::load(&path).unwrap().into_bookmarks(), marks);
}

#[test]
fn save_refuses_what_load_would_reject() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    for items in [
        vec![bm("", "h:1")],
        vec![bm("a\nb", "h:1")],
        vec![bm("a", "h")],
        vec![bm("a", "h:0")],
        vec![bm("a", "h:1"), bm("a", "h:2")],
    ] {
        let err = Bookmarks { path: path.clone(), items }.save().unwrap_err();
        assert!(matches!(err, BookmarkError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    }
    assert!(!path.exists());
}

#[test]
fn addresses() {
    for ok in [
        "127.0.0.1:7000",
        "[::1]:7000",
        "[fe80::1%2]:1",
        "localhost:1",
        "node-3.lab_x.example:65535",
    ] {
        assert_eq!(check_address(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "host",
        "host:",
        ":7000",
        "host:0",
        "host:65536",
        "host:+80",
        "host: 80",
        "::1:7000",
        "[::1]",
        "[nope]:1",
        "[::1]:",
        "ho st:1",
        "h/x:1",
        "127.0.0.1:0",
    ] {
        assert!(check_address(bad).is_err(), "{bad}");
    }
}

#[test]
fn default_path_prefers_xdg_then_home() {
    let base = tempfile::tempdir().unwrap();
    let xdg = base.path().join("xdg");
    let home = base.path().join("home");
    let env = |vars: Vec<(&'static str, OsString)>| {
        move |key: &str| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    };
    let both = env(vec![("XDG_CONFIG_HOME", xdg.clone().into()), ("HOME", home.clone().into())]);
    assert_eq!(default_path(both), Some(xdg.join("meshdeck").join("bookmarks.toml")));
    let only_home = env(vec![("HOME", home.clone().into())]);
    assert_eq!(
        default_path(only_home),
        Some(home.join(".config").join("meshdeck").join("bookmarks.toml"))
    );
    // Empty or relative XDG_CONFIG_HOME is ignored (XDG base directory spec).
    for bad in ["", "relative/dir"] {
        let ignored = env(vec![("XDG_CONFIG_HOME", bad.into()), ("HOME", home.clone().into())]);
        assert_eq!(default_path(ignored), Some(home.join(".config/meshdeck/bookmarks.toml")));
    }
    assert_eq!(default_path(env(vec![])), None);
    assert_eq!(default_path(env(vec![("HOME", "".into())])), None);
}

fn arb_bookmark() -> impl Strategy<Value = Bookmark> {
    (
        "\\PC{1,12}".prop_filter("non-blank", |n| !n.trim().is_empty()),
        prop_oneof![
            "[a-z0-9][a-z0-9.-]{0,20}",
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}"
        ],
        1u16..,
        "\\PC{1,30}",
        proptest::option::of("\\PC{1,30}"),
    )
        .prop_map(|(name, host, port, cluster_key, operator_key)| Bookmark {
            name,
            address: format!("{host}:{port}"),
            cluster_key: cluster_key.into(),
            operator_key: operator_key.map(PathBuf::from),
        })
}

/// Files worth loading: valid ones, valid ones with one byte changed or cut
/// short, and arbitrary bytes.
fn arb_file() -> impl Strategy<Value = Vec<u8>> {
    let valid = proptest::collection::vec(arb_bookmark(), 0..4)
        .prop_map(|items| {
            let body = toml::to_string(&FileOut { cluster: &items }).unwrap();
            format!("{HEADER}{body}").into_bytes()
        })
        .boxed();
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        valid.clone(),
        (valid.clone(), any::<proptest::sample::Index>(), any::<u8>()).prop_map(|(mut v, i, b)| {
            if !v.is_empty() {
                let i = i.index(v.len());
                v[i] = b;
            }
            v
        }),
        (valid, any::<proptest::sample::Index>()).prop_map(|(mut v, i)| {
            v.truncate(i.index(v.len() + 1));
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn load_never_loses_a_file(bytes in arb_file()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        fs::write(&path, &bytes).unwrap();
        match Bookmarks::load(&path).unwrap() {
            LoadOutcome::Loaded(marks) => {
                prop_assert_eq!(fs::read(&path).unwrap(), bytes);
                // What loads saves and loads back the same.
                marks.save().unwrap();
                prop_assert_eq!(Bookmarks::load(&path).unwrap(), LoadOutcome::Loaded(marks));
            }
            LoadOutcome::Corrupt { bookmarks, moved_to, error } => {
                prop_assert!(bookmarks.items.is_empty());
                prop_assert!(!error.is_empty());
                prop_assert!(!path.exists());
                prop_assert_eq!(fs::read(&moved_to).unwrap(), bytes);
            }
            LoadOutcome::Missing(_) => prop_assert!(false, "an existing file loaded as missing"),
        }
    }

    #[test]
    fn valid_bookmarks_round_trip(items in proptest::collection::vec(arb_bookmark(), 0..6)) {
        let dir = tempfile::tempdir().unwrap();
        let mut marks = Bookmarks::new(dir.path().join(FILE_NAME));
        for b in items {
            marks.upsert(b);
        }
        marks.save().unwrap();
        prop_assert_eq!(Bookmarks::load(&marks.path).unwrap(), LoadOutcome::Loaded(marks));
    }
}
