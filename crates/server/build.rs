//! Build script: makes sure the web app (`web/`) is built, then writes the table of files that
//! `src/assets.rs` embeds into the binary.
//!
//! `web/dist` is rebuilt with `npm ci` + `npm run build` when it is missing or older than its sources,
//! so `cargo run -- serve` on a fresh checkout serves the app. Environment:
//! - `CONVENE_SKIP_WEB_BUILD=1`: never run npm; embed whatever `web/dist` holds (possibly nothing).
//! - `CONVENE_WEB_DIST=/path`: embed this prebuilt directory instead of `web/dist` (packagers).

use std::{
    env,
    fmt::Write as _,
    fs,
    hash::{DefaultHasher, Hasher},
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, SystemTime},
};

/// Inputs of the web build: a change to any of them makes `web/dist` stale.
const WEB_INPUTS: &[&str] = &[
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

fn main() {
    println!("cargo:rerun-if-env-changed=CONVENE_SKIP_WEB_BUILD");
    println!("cargo:rerun-if-env-changed=CONVENE_WEB_DIST");
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let web = manifest.join("..").join("..").join("web");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    let dist = match env::var_os("CONVENE_WEB_DIST") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            println!("cargo:rerun-if-changed={}", dir.display());
            dir
        }
        None => {
            // Only existing paths are registered: cargo reruns every time for a missing one.
            for input in WEB_INPUTS {
                let path = web.join(input);
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
            // Registered even when missing (cargo then reruns until it exists), so a deleted or
            // rebuilt dist is noticed; a build made by this script costs one extra rerun at most.
            println!(
                "cargo:rerun-if-changed={}",
                web.join("dist").join("index.html").display()
            );
            let skip = env::var("CONVENE_SKIP_WEB_BUILD").is_ok_and(|v| !v.is_empty() && v != "0");
            if !skip && web.join("package.json").exists() {
                ensure_built(&web);
            }
            web.join("dist")
        }
    };

    let table = asset_table(&dist);
    fs::write(out.join("web_assets.rs"), table).expect("cannot write the asset table into OUT_DIR");
}

/// Builds `web/dist` if it is missing or stale. A lock directory keeps concurrent cargo builds (other
/// target dirs, other crates) from running npm in the same folder at once.
fn ensure_built(web: &Path) {
    if !is_stale(web) {
        return;
    }
    let _lock = BuildLock::acquire(&web.join(".build-lock"));
    // Someone else may have built it while we waited for the lock.
    if !is_stale(web) {
        return;
    }
    println!(
        "cargo:warning=building the web app with npm (web/dist is missing or older than web/src)"
    );
    let lock_file = web.join("package-lock.json");
    let installed = web.join("node_modules").join(".package-lock.json");
    if newest_mtime(&lock_file)
        .is_none_or(|lock| newest_mtime(&installed).is_none_or(|inst| inst < lock))
    {
        npm(web, &["ci", "--no-audit", "--no-fund"], &[]);
    }
    // Build beside dist and swap, so a concurrent compile never embeds a half-written directory.
    let staging = web.join("dist.staging");
    let _ = fs::remove_dir_all(&staging);
    npm(
        web,
        &["run", "build"],
        &[("CONVENE_WEB_OUT_DIR", "dist.staging")],
    );
    let dist = web.join("dist");
    let old = web.join("dist.old");
    let _ = fs::remove_dir_all(&old);
    if dist.exists() {
        fs::rename(&dist, &old).expect("cannot move the old web/dist aside");
    }
    fs::rename(&staging, &dist).expect("cannot move the new web build into web/dist");
    let _ = fs::remove_dir_all(&old);
}

fn is_stale(web: &Path) -> bool {
    let Some(built) = newest_mtime(&web.join("dist").join("index.html")) else {
        return true;
    };
    WEB_INPUTS
        .iter()
        .filter_map(|input| newest_mtime(&web.join(input)))
        .any(|source| source > built)
}

fn npm(web: &Path, args: &[&str], envs: &[(&str, &str)]) {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let status = Command::new(npm)
        .args(args)
        .current_dir(web)
        .envs(envs.iter().copied())
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "`npm {}` in {} failed ({status}); fix the web build or set CONVENE_SKIP_WEB_BUILD=1 to build without the web app",
            args.join(" "),
            web.display()
        ),
        Err(e) => panic!(
            "cannot run npm ({e}): install Node.js 20 or newer to build the web app, or set CONVENE_SKIP_WEB_BUILD=1 to build without it"
        ),
    }
}

/// The newest modification time of a file, or of any file below a directory.
fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    let mut newest = meta.modified().ok();
    for entry in fs::read_dir(path).ok()?.flatten() {
        if let Some(t) = newest_mtime(&entry.path()) {
            newest = Some(newest.map_or(t, |n| n.max(t)));
        }
    }
    newest
}

/// A lock held as a directory (creating one is atomic everywhere); removed on drop, even on panic.
struct BuildLock(PathBuf);

impl BuildLock {
    fn acquire(path: &Path) -> BuildLock {
        let stale_after = Duration::from_secs(15 * 60);
        loop {
            match fs::create_dir(path) {
                Ok(()) => return BuildLock(path.to_owned()),
                Err(_) => {
                    // A build that died without cleaning up leaves the lock behind; it is stale after a while.
                    let age = fs::metadata(path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok());
                    if age.is_some_and(|age| age > stale_after) {
                        let _ = fs::remove_dir(path);
                    }
                    thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

/// Rust source for `static FILES: &[Asset]`, one entry per file under `dist`, sorted by path.
fn asset_table(dist: &Path) -> String {
    let mut files = Vec::new();
    collect(dist, dist, &mut files);
    files.sort();
    let mut out = String::from("// Generated by build.rs: the embedded web app.\n");
    out.push_str("static FILES: &[Asset] = &[\n");
    for (rel, abs) in &files {
        let Ok(bytes) = fs::read(abs) else { continue };
        let mut hasher = DefaultHasher::new();
        hasher.write(&bytes);
        let etag = format!("\"{:016x}\"", hasher.finish());
        let _ = writeln!(
            out,
            "    Asset {{ path: {rel:?}, body: include_bytes!({abs:?}), etag: {etag:?} }},",
            abs = abs.display().to_string()
        );
    }
    out.push_str("];\n");
    out
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.push((rel, path));
        }
    }
}
