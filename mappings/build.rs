//! Refuses to build a stale catalogue: when a mapping file, a schema snapshot or a
//! hand-written module differs from what `cargo xtask gen` last compiled, the crate
//! fails with one `compile_error!` naming the files and `cargo xtask gen`.

#[path = "build/inputs.rs"]
#[allow(dead_code)] // `record` and its header are for `xtask gen`.
mod inputs;

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // The whole crate directory: any input added, changed or removed reruns this.
    println!("cargo::rerun-if-changed=.");
    let check = match inputs::stale(&dir) {
        Ok(None) => String::new(),
        Ok(Some(message)) => format!("compile_error!({message:?});\n"),
        Err(error) => format!(
            "compile_error!({:?});\n",
            format!("cannot read the inputs of `cargo xtask gen`: {error}")
        ),
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("fresh.rs"), check).expect("OUT_DIR is writable");
}
