//! Where things are: the workspace root, its `[[bin]]` targets (from `cargo metadata`), and the
//! built binaries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this crate is `shared/lambda-harness`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

pub fn events_dir() -> PathBuf {
    root().join("events")
}

pub fn template_path() -> PathBuf {
    root().join("template.yaml")
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// The target directory: `CARGO_TARGET_DIR`, or `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() { dir } else { root().join(dir) }
        }
        _ => root().join("target"),
    }
}

/// The directory of the running test's profile (`target/debug` for `cargo test`): the test
/// executable lives in its `deps/`.
pub fn profile_dir_of_current_exe() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    if dir.file_name()? == "deps" { dir.parent().map(Path::to_path_buf) } else { Some(dir.to_path_buf()) }
}

/// Every `[[bin]]` of the workspace's packages: binary name → package name.
pub fn workspace_bins() -> Result<BTreeMap<String, String>, String> {
    let out = Command::new(cargo())
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let mut bins = BTreeMap::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        for target in package["targets"].as_array().into_iter().flatten() {
            if target["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin")) {
                let name = target["name"].as_str().unwrap_or_default().to_owned();
                bins.insert(name, package["name"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    Ok(bins)
}

/// Make sure the function binaries exist in the current profile directory and are current, and
/// return that directory.
///
/// `cargo test` builds binaries only for integration tests of their own package, so the function
/// crates' executables are not built by `cargo test --workspace`. This runs
/// `cargo build --workspace --all-targets` (the same selection, features and profile as the test
/// command's `cargo test --workspace --all-targets`, so nothing is compiled twice: only the
/// binaries are linked). `PARKPAY_FUNCTION_BIN_DIR` skips the build and uses that directory.
pub fn built_binaries(names: &[&str]) -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PARKPAY_FUNCTION_BIN_DIR").filter(|d| !d.is_empty()) {
        return check_present(PathBuf::from(dir), names);
    }
    let dir = profile_dir_of_current_exe().ok_or("cannot tell where the test executable lives")?;
    let release = dir.file_name().is_some_and(|n| n == "release");
    let mut args = vec!["build", "--workspace", "--all-targets"];
    if release {
        args.push("--release");
    }
    let status = Command::new(cargo())
        .args(&args)
        .current_dir(root())
        .status()
        .map_err(|e| format!("cargo {}: {e}", args.join(" ")))?;
    if !status.success() {
        return Err(format!("cargo {} failed ({status})", args.join(" ")));
    }
    check_present(dir, names)
}

fn check_present(dir: PathBuf, names: &[&str]) -> Result<PathBuf, String> {
    for name in names {
        if !dir.join(name).is_file() {
            return Err(format!("{} is not built", dir.join(name).display()));
        }
    }
    Ok(dir)
}
