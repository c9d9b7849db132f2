//! A stale catalogue does not build (issue 18 item 5): the `mappings` crate's build
//! script, run by cargo on a copy of `mappings/` whose YAML changed after `cargo
//! xtask gen`, fails the build with a message naming the file and the command.
//!
//! The copy keeps the crate's build script, its inputs (YAML files, snapshots,
//! hand-written modules) and the record `gen` wrote, and a `lib.rs` of only the line
//! that includes the build script's verdict: the generated code and its dependencies
//! play no part, so the build takes seconds.

use std::path::Path;
use std::process::Command;

/// The line of `mappings/src/lib.rs` that fails the crate when it is stale.
const VERDICT: &str = r#"include!(concat!(env!("OUT_DIR"), "/fresh.rs"));"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if path.is_dir() {
            copy_dir(&path, &to.join(name));
        } else {
            std::fs::copy(&path, to.join(name)).unwrap();
        }
    }
}

/// `cargo check` of the copy at `dir`: its success and stderr.
fn check(dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO"))
        .args(["check", "--quiet", "--offline"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_yaml_file_changed_after_gen_breaks_the_build_naming_gen() {
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let lib = std::fs::read_to_string(real.join("src/lib.rs")).unwrap();
    assert!(
        lib.contains(VERDICT),
        "mappings/src/lib.rs includes the verdict"
    );

    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("mappings");
    std::fs::create_dir_all(dir.join("src/generated")).unwrap();
    for file in std::fs::read_dir(&real).unwrap() {
        let path = file.unwrap().path();
        if path
            .extension()
            .is_some_and(|extension| extension == "yaml")
        {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    copy_dir(&real.join("schema"), &dir.join("schema"));
    copy_dir(&real.join("src/custom"), &dir.join("src/custom"));
    copy_dir(&real.join("build"), &dir.join("build"));
    // The hand-written modules are inputs too (`src/custom/contacts.rs`).
    copy_dir(&real.join("src/custom"), &dir.join("src/custom"));
    std::fs::copy(real.join("build.rs"), dir.join("build.rs")).unwrap();
    std::fs::copy(
        real.join("src/generated/inputs.txt"),
        dir.join("src/generated/inputs.txt"),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), format!("{VERDICT}\n")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"stale-catalogue\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[workspace]\n",
    )
    .unwrap();

    // As committed, the inputs are those gen recorded.
    let (ok, stderr) = check(&dir);
    assert!(ok, "{stderr}");

    // An edited mapping: the build stops, naming the file and the command.
    let users = dir.join("users.yaml");
    let text = std::fs::read_to_string(&users).unwrap();
    std::fs::write(&users, format!("{text}\n# an edit\n")).unwrap();
    let (ok, stderr) = check(&dir);
    assert!(!ok, "a stale catalogue builds");
    assert!(
        stderr.contains(
            "the compiled-in mappings are stale: `mappings/users.yaml` changed since `cargo xtask gen` last ran; run `cargo xtask gen`, then build again"
        ),
        "{stderr}"
    );

    // A new mapping and a new hand-written module are named too.
    std::fs::write(&users, text).unwrap();
    std::fs::write(dir.join("orders.yaml"), "source: {}\n").unwrap();
    std::fs::create_dir_all(dir.join("src/custom")).unwrap();
    std::fs::write(dir.join("src/custom/orders.rs"), "").unwrap();
    let (ok, stderr) = check(&dir);
    assert!(!ok, "a stale catalogue builds");
    assert!(
        stderr.contains("`mappings/orders.yaml` is new, `mappings/src/custom/orders.rs` is new"),
        "{stderr}"
    );
}
