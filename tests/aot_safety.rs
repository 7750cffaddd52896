//! Loading `.archx` artifacts safely: real artifacts built by the CLI, then tampered with
//! (members added or swapped, manifest fields changed, sizes lied about, hostile JSON,
//! links planted at the paths older versions used), are refused with a clear error and
//! exit code 1 (no panic, no signal), and nothing is written outside archc's private
//! folders. The manifest parser returns on every text.

#![cfg(feature = "mlir")]

mod common;

use archc_mlir::aot::manifest::{self, ManifestError};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A fresh folder for one test, removed by [`Scratch::drop`].
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("archc-aot-safety-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn archc(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_archc")).args(args).current_dir(dir).output().expect("archc runs")
}

/// Builds `examples/mlp.arch` into `dir/mlp.archx` with the CLI.
fn build_mlp(dir: &Path) -> PathBuf {
    let mlp = common::repo().join("examples/mlp.arch").display().to_string();
    let out = archc(dir, &["build", &mlp, "--target", "cpu", "-o", "mlp.archx"]);
    assert!(out.status.success(), "build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    dir.join("mlp.archx")
}

/// Runs `archc run FILE` in `dir`, which must fail as a user error: exit code 1 (not a
/// panic's 101, not a signal); its stderr.
fn run_fails(dir: &Path, file: &str) -> String {
    let out = archc(dir, &["run", file]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "archc run {file}: {:?}\n{err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The members of a zip archive, in order.
fn members(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).expect("open")).expect("zip");
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).expect("member");
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).expect("read");
            (f.name().to_string(), bytes)
        })
        .collect()
}

/// Writes `members` as a zip archive at `path`.
fn write_zip(path: &Path, members: &[(String, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("create"));
    let deflate = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        zip.start_file(name.as_str(), deflate).expect("start");
        zip.write_all(bytes).expect("write");
    }
    zip.finish().expect("finish");
}

/// Writes `dir/name`: the members of `original` as `edit` leaves them.
fn tampered(original: &Path, name: &str, edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> String {
    let mut all = members(original);
    edit(&mut all);
    write_zip(&original.with_file_name(name), &all);
    name.to_string()
}

/// The member `name` of `all`.
fn member<'a>(all: &'a mut [(String, Vec<u8>)], name: &str) -> &'a mut Vec<u8> {
    &mut all.iter_mut().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no member {name}")).1
}

/// Replaces `from` by `to` in the manifest's text, which must contain it.
fn edit_text(all: &mut [(String, Vec<u8>)], from: &str, to: &str) {
    let m = member(all, "manifest.json");
    let text = String::from_utf8(m.clone()).expect("utf-8");
    assert!(text.contains(from), "no `{from}` in\n{text}");
    *m = text.replace(from, to).into_bytes();
}

/// Edits the manifest as JSON (fields keep their order).
fn edit_manifest(all: &mut [(String, Vec<u8>)], edit: impl FnOnce(&mut Value)) {
    let m = member(all, "manifest.json");
    let mut json: Value = serde_json::from_slice(m).expect("JSON");
    edit(&mut json);
    *m = serde_json::to_vec_pretty(&json).expect("JSON");
}

/// Sets the declared size of member `main.so` to the number `n`, as written.
fn edit_size(all: &mut [(String, Vec<u8>)], n: &str) {
    edit_manifest(all, |m| {
        let members = m["members"].as_array_mut().expect("members");
        members.iter_mut().filter(|e| e["name"] == "main.so").for_each(|e| e["size"] = json!("SIZE"));
    });
    edit_text(all, "\"SIZE\"", n);
}

/// The parameter `name` of the manifest's `main`.
fn param<'a>(m: &'a mut Value, name: &str) -> &'a mut Value {
    let params = m["funcs"][0]["params"].as_array_mut().expect("params");
    params.iter_mut().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no parameter {name}"))
}

/// Makes `all` an artifact of an older format: its manifest `manifest.txt`, in the line
/// format with first line `first`.
fn old_manifest(all: &mut [(String, Vec<u8>)], first: &str) {
    let entry = all.iter_mut().find(|(n, _)| n == "manifest.json").expect("manifest");
    let text = format!("{first}\ntarget cpu\ncpu x86-64-v3\nprogram 0123456789abcdef\nmain mlp.arch\nfunc main\n");
    *entry = ("manifest.txt".to_string(), text.into_bytes());
}

/// `../` enough times to climb from any temporary folder to the root, then `path`
/// (absolute) made relative.
fn climbing_to(path: &Path) -> String {
    format!("{}{}", "../".repeat(24), path.display().to_string().trim_start_matches('/'))
}

/// Item: member and function names that leave the extraction folder (`..`, absolute
/// paths) are refused before anything is written.
#[test]
fn names_that_leave_the_folder_are_refused_and_nothing_is_written() {
    let s = Scratch::new("names");
    let art = build_mlp(&s.0);
    let escape = std::env::temp_dir().join(format!("archc-escape-{}.txt", std::process::id()));
    let name = format!("src/{}", climbing_to(&escape));
    let file = tampered(&art, "member.archx", |all| all.push((name.clone(), b"x".to_vec())));
    let err = run_fails(&s.0, &file);
    assert!(err.contains(&format!("member name `{name}` is refused: it has an empty, `.` or `..` component")), "{err}");
    assert!(!escape.exists(), "{} was written", escape.display());

    let absolute = escape.display().to_string();
    let file = tampered(&art, "absolute.archx", |all| all.push((absolute, b"x".to_vec())));
    let err = run_fails(&s.0, &file);
    assert!(err.contains("is refused: it is an absolute path"), "{err}");
    assert!(!escape.exists(), "{} was written", escape.display());

    // A function named to write its object elsewhere, with the member renamed to match.
    let object = std::env::temp_dir().join(format!("archc-escape-{}", std::process::id()));
    let func = climbing_to(&object);
    let file = tampered(&art, "func.archx", |all| {
        edit_manifest(all, |m| {
            m["funcs"][0]["name"] = json!(func);
            let members = m["members"].as_array_mut().expect("members");
            members.iter_mut().filter(|e| e["name"] == "main.so").for_each(|e| e["name"] = json!(format!("{func}.so")));
        });
        all.iter_mut().filter(|(n, _)| n == "main.so").for_each(|(n, _)| *n = format!("{func}.so"));
    });
    let err = run_fails(&s.0, &file);
    assert!(err.contains("not a valid archc artifact") && err.contains("is refused"), "{err}");
    assert!(!object.with_extension("so").exists(), "{}.so was written", object.display());
    let file =
        tampered(&art, "func-only.archx", |all| edit_manifest(all, |m| m["funcs"][0]["name"] = json!("../../x")));
    let err = run_fails(&s.0, &file);
    assert!(err.contains("function name `../../x` is refused: expected an identifier"), "{err}");
}

/// Item: files go to private fresh folders. Folders and links planted at the names
/// earlier versions used (`archc-archx-<pid>-<stem>`, `archc-aot-<pid>-<n>`,
/// `archc-build-<pid>-<n>`) are never written through; the folders used are owner-only
/// and gone afterwards.
#[test]
fn files_are_written_to_private_fresh_folders_only() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let s = Scratch::new("private");
    let (tmp, pid) = (std::env::temp_dir(), std::process::id());
    let victim = |what: &str| tmp.join(format!("archc-victim-{pid}-{what}"));
    let mut planted = vec![tmp.join(format!("archc-archx-{pid}-mlp"))];
    for n in 0..64 {
        planted.push(tmp.join(format!("archc-aot-{pid}-{n}")));
        planted.push(tmp.join(format!("archc-build-{pid}-{n}")));
    }
    for dir in &planted {
        std::fs::create_dir_all(dir).expect("planted dir");
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let (link, target) = match name.split('-').nth(1) {
            Some("archx") => ("mlp.arch", victim("src")),
            Some("aot") => ("main.so", victim("so")),
            _ => ("raw.ll", victim("build")),
        };
        symlink(&target, dir.join(link)).expect("planted link");
    }
    // Built, opened and loaded in this process, so that its pid is the one planted.
    let program =
        common::check(&common::repo().join("examples/mlp.arch"), &Default::default()).program.expect("mlp builds");
    let cpu = archc_mlir::aot::HostCpu::host_default();
    let shapes = vec![(archc_compiler::tir::DType::F32, vec![2, 64])];
    let target = archc_mlir::aot::AotTarget::Cpu;
    let entry = archc_mlir::aot::build::compile_function(&program, "main", &shapes, &["B".into()], &target, &cpu)
        .expect("compiles");
    let art = archc_mlir::aot::Artifact {
        target,
        cpu,
        program_hash: archc_mlir::aot::program_hash(&program),
        main_source: "mlp.arch".into(),
        options: Vec::new(),
        sources: vec![("mlp.arch".into(), std::fs::read_to_string(common::repo().join("examples/mlp.arch")).unwrap())],
        funcs: vec![entry],
    };
    let path = s.0.join("mlp.archx");
    art.write(&path).expect("writes");
    let opened = archc::artifact::open(&path).expect("opens");
    let dir = opened.dir().to_path_buf();
    assert!(!planted.contains(&dir), "extracted into the planted {}", dir.display());
    assert_eq!(std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::read_to_string(&opened.main).expect("main source"), art.sources[0].1);
    archc_mlir::exec::artifact::AotExecutor::new(&program, &opened.artifact).expect("loads");
    drop(opened);
    assert!(!dir.exists(), "{} left behind", dir.display());
    let written: Vec<PathBuf> = ["src", "so", "build"].map(victim).into_iter().filter(|v| v.exists()).collect();
    for dir in &planted {
        let _ = std::fs::remove_dir_all(dir);
    }
    for v in &written {
        let _ = std::fs::remove_file(v);
    }
    assert!(written.is_empty(), "written through planted links: {written:?}");
}

/// The same through the command line: `sh` plants links at the paths earlier versions
/// derived from its pid, then becomes archc (`exec` keeps the pid); archc runs the
/// artifact and writes through none of them.
#[test]
fn cli_never_writes_through_links_at_predictable_paths() {
    let s = Scratch::new("planted");
    build_mlp(&s.0);
    let victims = [s.0.join("victim-src"), s.0.join("victim-so")];
    let script = r#"T="$1"; mkdir -p "$T/archc-archx-$$-mlp" "$T/archc-aot-$$-0"
        ln -s "$2" "$T/archc-archx-$$-mlp/mlp.arch"; ln -s "$3" "$T/archc-aot-$$-0/main.so"
        echo "$T/archc-archx-$$-mlp $T/archc-aot-$$-0"; exec "$0" run mlp.archx"#;
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_archc"))
        .arg(std::env::temp_dir())
        .args(&victims)
        .current_dir(&s.0)
        .output()
        .expect("sh runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for planted in stdout.lines().next().expect("planted folders").split(' ') {
        let _ = std::fs::remove_dir_all(planted);
    }
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("f32[2, 10]"), "{stdout}");
    for v in &victims {
        assert!(!v.exists(), "written through a planted link: {}", v.display());
    }
}

/// Item: a manifest whose signatures differ from the program its sources build (which
/// would size buffers wrongly) or are inconsistent is refused before code is loaded.
#[test]
fn manifest_signatures_must_be_the_rebuilt_programs() {
    let s = Scratch::new("signature");
    let art = build_mlp(&s.0);
    let ok = archc(&s.0, &["run", "mlp.archx", "--dim", "B=3"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let mismatch = "the artifact's manifest does not match its sources: @main";
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|m| m["funcs"][0]["outputs"][0] = json!("f32[B, 1]")),
            "output 0 is f32[B, 1] in the manifest, f32[B, 10] when rebuilt",
        ),
        (
            Box::new(|m| m["funcs"][0]["inputs"][0] = json!("f32[B, 640]")),
            "cannot be rebuilt as the manifest states it (@main: input 0 is",
        ),
        (
            Box::new(|m| m["funcs"][0]["inputs"][0] = json!("i64[B, 64]")),
            "cannot be rebuilt as the manifest states it (@main: input 0 is",
        ),
        (
            Box::new(|m| param(m, "linear_0.w")["type"] = json!("f32[64, 12]")),
            "parameter 1 is linear_0.w: f32[64, 12] in the manifest, linear_0.w: f32[64, 128] when rebuilt",
        ),
        (
            Box::new(|m| m["funcs"][0]["params"].as_array_mut().unwrap().retain(|p| p["name"] != "linear_1.b")),
            "has 3 parameters in the manifest, 4 when rebuilt",
        ),
        (
            Box::new(|m| param(m, "linear_0.w")["global"] = json!("param_2")),
            "sets its parameters through other globals than when rebuilt",
        ),
        (
            Box::new(|m| m["funcs"][0]["outputs"].as_array_mut().unwrap().push(json!("f32[B, 10]"))),
            "has 2 outputs in the manifest, 1",
        ),
    ];
    for (i, (edit, want)) in cases.iter().enumerate() {
        let file = tampered(&art, &format!("sig{i}.archx"), |all| edit_manifest(all, edit));
        let err = run_fails(&s.0, &file);
        assert!(err.contains(mismatch) && err.contains(want) && err.contains("rebuild the artifact"), "{err}");
    }
    let dynamic =
        |field: &'static str, n: u64| -> Edit { Box::new(move |m| m["funcs"][0]["dynamic"][0][field] = json!(n)) };
    let inconsistent: Vec<(Edit, &str)> = vec![
        (dynamic("input", 9), "@main: dynamic size B is read from input 9, but there is 1 input"),
        (dynamic("axis", 1), "@main: dynamic size B is read from axis 1 of input 0, which is not B"),
        (
            Box::new(|m| m["funcs"][0]["outputs"][0] = json!("f32[N, 10]")),
            "@main: output 0 has size symbol N, which is not dynamic",
        ),
        (Box::new(|m| m["funcs"][0]["outputs"][0] = json!("f32[B, 4294967296]")), "bad size `4294967296`"),
    ];
    for (i, (edit, want)) in inconsistent.iter().enumerate() {
        let file = tampered(&art, &format!("bad{i}.archx"), |all| edit_manifest(all, edit));
        let err = run_fails(&s.0, &file);
        assert!(err.contains("not a valid archc artifact") && err.contains(want), "{err}");
    }
    // An index past every integer type: refused as JSON, before any check reads it.
    let file = tampered(&art, "bad-index.archx", |all| {
        edit_manifest(all, |m| m["funcs"][0]["dynamic"][0]["input"] = json!("INDEX"));
        edit_text(all, "\"INDEX\"", "99999999999999999999");
    });
    let err = run_fails(&s.0, &file);
    assert!(
        err.contains("not a valid archc artifact") && err.contains("floating point `1e+20`, expected usize"),
        "{err}"
    );
}

/// A shared object whose constructor creates `marker` when it is loaded.
fn object_with_constructor(dir: &Path, marker: &Path) -> Vec<u8> {
    let c = dir.join("ctor.c");
    let body = format!(
        "#include <stdio.h>\n__attribute__((constructor)) static void hit(void) {{\n  \
         FILE *f = fopen(\"{}\", \"w\");\n  if (f) fclose(f);\n}}\nvoid archc_init(void) {{}}\n",
        marker.display()
    );
    std::fs::write(&c, body).expect("c source");
    let so = dir.join("ctor.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = std::process::Command::new(cc).args(["-shared", "-fPIC", "-o"]).arg(&so).arg(&c).output().expect("cc");
    assert!(out.status.success(), "cc: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&so).expect("object")
}

/// Patches the zip directory and local header of member `name` to claim `size` bytes
/// uncompressed (the data stays as it is).
fn understate(path: &Path, name: &str, size: u32) {
    let mut d = std::fs::read(path).expect("zip");
    let u16_at = |d: &[u8], i: usize| u16::from_le_bytes([d[i], d[i + 1]]) as usize;
    let mut i = 0;
    let mut patched = false;
    while let Some(at) = d[i..].windows(4).position(|w| w == b"PK\x01\x02") {
        let h = i + at;
        let len = u16_at(&d, h + 28);
        if &d[h + 46..h + 46 + len] == name.as_bytes() {
            d[h + 24..h + 28].copy_from_slice(&size.to_le_bytes());
            let local = u32::from_le_bytes(d[h + 42..h + 46].try_into().unwrap()) as usize;
            d[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
            patched = true;
        }
        i = h + 46;
    }
    assert!(patched, "no {name} in the zip directory");
    std::fs::write(path, d).expect("zip");
}

/// Item: every member is checked against the size and SHA-256 digest the manifest lists
/// before anything is written or loaded: a swapped object's constructor never runs; a
/// member larger than declared is refused before it is inflated past that; the member
/// count and total size are bounded; old formats ask for a rebuild.
#[test]
fn members_are_verified_before_anything_is_written_or_loaded() {
    let s = Scratch::new("members");
    let art = build_mlp(&s.0);
    let marker = s.0.join("constructor-ran");
    let evil = object_with_constructor(&s.0, &marker);
    let file = tampered(&art, "swapped.archx", |all| *member(all, "main.so") = evil.clone());
    let err = run_fails(&s.0, &file);
    assert!(err.contains(&format!("member `main.so` is {} bytes, the manifest declares", evil.len())), "{err}");
    assert!(!marker.exists(), "the swapped object's constructor ran");
    // The same size as the original, one bit changed: the digest decides.
    let file = tampered(&art, "flipped.archx", |all| member(all, "main.so")[100] ^= 1);
    let err = run_fails(&s.0, &file);
    assert!(err.contains("member `main.so` does not match its SHA-256 digest in the manifest"), "{err}");
    assert!(!marker.exists(), "the swapped object's constructor ran");

    let source_len = members(&art).iter().find(|(n, _)| n == "src/mlp.arch").expect("source").1.len();
    let pad = |all: &mut Vec<(String, Vec<u8>)>| member(all, "src/mlp.arch").extend(vec![b' '; 64 << 20]);
    let file = tampered(&art, "big.archx", pad);
    let err = run_fails(&s.0, &file);
    let size = source_len + (64 << 20);
    assert!(
        err.contains(&format!("member `src/mlp.arch` is {size} bytes, the manifest declares {source_len}")),
        "{err}"
    );
    let file = tampered(&art, "lying.archx", pad);
    understate(&s.0.join(&file), "src/mlp.arch", source_len as u32);
    let err = run_fails(&s.0, &file);
    assert!(err.contains(&format!("member `src/mlp.arch` holds more than the {source_len} bytes declared")), "{err}");

    let file = tampered(&art, "many.archx", |all| {
        all.extend((0..1100).map(|i| (format!("src/f{i}.arch"), Vec::new())));
    });
    assert!(run_fails(&s.0, &file).contains("it has 1102 members, more than 1024"));
    let file = tampered(&art, "huge.archx", |all| edit_size(all, "99999999999"));
    assert!(run_fails(&s.0, &file).contains("member `main.so` declares 99999999999 bytes, more than 1073741824"));
    let file = tampered(&art, "unlisted.archx", |all| all.push(("src/extra.arch".into(), b"x".to_vec())));
    assert!(run_fails(&s.0, &file).contains("member `src/extra.arch` is not listed in the manifest"));
    let file = tampered(&art, "missing.archx", |all| all.retain(|(n, _)| n != "src/mlp.arch"));
    assert!(run_fails(&s.0, &file).contains("member `src/mlp.arch` listed in the manifest is missing"));
    for old in ["archx 2", "archx 3"] {
        let file = tampered(&art, "old.archx", |all| old_manifest(all, old));
        let err = run_fails(&s.0, &file);
        let want = format!("format `{old}` is from an older archc");
        assert!(err.contains(&want) && err.contains("rebuild the artifact"), "{err}");
    }
}

/// JSON-specific hostility, through the command line: unknown fields, wrong JSON types,
/// repeated functions, members, options and keys, numbers past every bound, deep nesting,
/// an oversized manifest, other formats. Each is refused with exit code 1 and the reason.
#[test]
fn hostile_json_manifests_are_refused() {
    type Edit<'a> = &'a dyn Fn(&mut Vec<(String, Vec<u8>)>);
    let s = Scratch::new("json");
    let art = build_mlp(&s.0);
    let refused = |name: &str, edit: Edit, want: &[&str]| {
        let file = tampered(&art, &format!("{name}.archx"), |all| edit(all));
        let err = run_fails(&s.0, &file);
        assert!(want.iter().all(|w| err.contains(w)), "{name}: {want:?} not all in:\n{err}");
    };
    let invalid = "not a valid archc artifact: the manifest is not valid: ";
    // Unknown fields, wherever they are.
    refused("unknown", &|all| edit_manifest(all, |m| m["entry"] = json!("evil")), &[invalid, "unknown field `entry`"]);
    refused(
        "unknown-member",
        &|all| edit_manifest(all, |m| m["members"][0]["mode"] = json!(0o4755)),
        &[invalid, "unknown field `mode`"],
    );
    refused(
        "unknown-func",
        &|all| edit_manifest(all, |m| m["funcs"][0]["preload"] = json!(["/tmp/evil.so"])),
        &[invalid, "unknown field `preload`"],
    );
    // Wrong JSON types.
    refused(
        "size-string",
        &|all| edit_manifest(all, |m| m["members"][0]["size"] = json!("812")),
        &[invalid, "invalid type: string \"812\", expected u64"],
    );
    refused(
        "sync-string",
        &|all| edit_manifest(all, |m| m["funcs"][0]["sync"] = json!("yes")),
        &[invalid, "expected a boolean"],
    );
    refused(
        "funcs-object",
        &|all| edit_manifest(all, |m| m["funcs"] = json!({ "main": {} })),
        &[invalid, "invalid type: map, expected a sequence"],
    );
    refused(
        "member-array",
        &|all| edit_manifest(all, |m| m["members"][0] = json!(["src/mlp.arch", 1, "00"])),
        &[invalid, "invalid type: sequence, expected an object"],
    );
    refused(
        "format-string",
        &|all| edit_manifest(all, |m| m["format"] = json!("4")),
        &[invalid, "invalid type: string"],
    );
    // Repeats: a function, a member, an option, a key.
    let repeat = |list: &'static str| {
        move |all: &mut Vec<(String, Vec<u8>)>| {
            edit_manifest(all, |m| {
                let first = m[list][0].clone();
                m[list].as_array_mut().unwrap().push(first);
            })
        }
    };
    refused("func-twice", &repeat("funcs"), &["manifest `funcs[1]`: function `main` listed twice"]);
    refused("member-twice", &repeat("members"), &["member `src/mlp.arch` listed twice"]);
    refused(
        "option-twice",
        &|all| edit_text(all, "\"options\": {", "\"options\": {\n    \"train\": \"true\","),
        &[invalid, "option `train` given twice"],
    );
    refused(
        "key-twice",
        &|all| edit_text(all, "\"format\": 4,", "\"format\": 4,\n  \"format\": 4,"),
        &[invalid, "duplicate field `format`"],
    );
    refused(
        "main-twice",
        &|all| edit_text(all, "\"main\": \"mlp.arch\",", "\"main\": \"mlp.arch\",\n  \"main\": \"../../x\","),
        &[invalid, "duplicate field `main`"],
    );
    // Numbers: fractions, negatives, past u64, past the bounds.
    let size = |n: &'static str| move |all: &mut Vec<(String, Vec<u8>)>| edit_size(all, n);
    refused("size-1e30", &size("1e30"), &[invalid, "invalid type: floating point `1e+30`, expected u64"]);
    refused("size-negative", &size("-1"), &[invalid, "invalid value: integer `-1`, expected u64"]);
    refused("size-2^64", &size("18446744073709551616"), &[invalid, "expected u64"]);
    refused("size-fraction", &size("812.5"), &[invalid, "invalid type: floating point `812.5`, expected u64"]);
    refused("size-1e400", &size("1e400"), &[invalid, "number out of range"]);
    refused("size-max", &size("18446744073709551615"), &["declares 18446744073709551615 bytes, more than 1073741824"]);
    // Deep nesting: where a field is unknown (skipped without recursion, then refused),
    // where one is expected, before the format, and as the whole manifest.
    let deep = format!("{}{}", "[".repeat(1 << 20), "]".repeat(1 << 20));
    refused(
        "deep-unknown",
        &|all| edit_text(all, "\"format\": 4,", &format!("\"format\": 4,\n  \"x\": {deep},")),
        &[invalid, "unknown field `x`"],
    );
    refused("deep-field", &|all| edit_text(all, "\"target\": \"cpu\"", &format!("\"target\": {deep}")), &[invalid]);
    refused(
        "deep-before-format",
        &|all| edit_text(all, "{\n  \"format\": 4,", &format!("{{\"x\": {deep},\n  \"format\": 4,")),
        &[invalid, "unknown field `x`"],
    );
    refused("deep-whole", &|all| *member(all, "manifest.json") = "[".repeat(1 << 20).into_bytes(), &[invalid]);
    refused(
        "deep-objects",
        &|all| *member(all, "manifest.json") = "{\"format\":".repeat(1 << 18).into_bytes(),
        &[invalid, "invalid type: map, expected u64"],
    );
    // Too large (whitespace is valid JSON): refused before it is parsed.
    refused(
        "large",
        &|all| member(all, "manifest.json").extend(vec![b' '; 5 << 20]),
        &["its manifest.json is larger than 4194304 bytes"],
    );
    // Other formats and names.
    refused(
        "newer",
        &|all| edit_manifest(all, |m| m["format"] = json!(5)),
        &["format 5 is from a newer archc", "rebuild the artifact"],
    );
    refused(
        "format-3",
        &|all| edit_manifest(all, |m| m["format"] = json!(3)),
        &["format `archx 3` is from an older archc; rebuild the artifact with this archc"],
    );
    refused(
        "old-text",
        &|all| old_manifest(all, "archx 3"),
        &["format `archx 3` is from an older archc; rebuild the artifact with this archc"],
    );
    refused("old-unknown", &|all| old_manifest(all, "archx 9"), &["not that of an archc artifact"]);
    refused("no-manifest", &|all| all.retain(|(n, _)| n != "manifest.json"), &["it has no manifest.json"]);
}

/// SplitMix64: deterministic choices for the mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random edit of a manifest: a character replaced, a line deleted, repeated or
/// moved, a number made extreme, the text cut short, or a line of fragments inserted.
fn mutate(text: &str, rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "\0",
        "/",
        "..",
        " ",
        "\n",
        "0",
        "-1",
        "[",
        "]",
        ",",
        "B",
        "?",
        "*",
        "\"funcs\": [],",
        "\"members\": [{}],",
        "{",
        "é",
        "18446744073709551616",
        "99999999999999999999",
        "4294967296",
        "src/",
        ".so",
        "\t",
        ":",
        "\"",
        "}",
        "null",
        "1e30",
        "\\u0000",
    ];
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    if lines.is_empty() {
        return format!("{text}{}", PIECES[rng.below(PIECES.len())]);
    }
    match rng.below(7) {
        0 => {
            let mut chars: Vec<char> = text.chars().collect();
            let at = rng.below(chars.len());
            let piece: Vec<char> = PIECES[rng.below(PIECES.len())].chars().collect();
            chars.splice(at..(at + 1).min(chars.len()), piece);
            return chars.into_iter().collect();
        }
        1 => {
            let at = rng.below(lines.len());
            lines.remove(at);
        }
        2 => {
            let at = rng.below(lines.len());
            let line = lines[at].clone();
            lines.insert(rng.below(lines.len() + 1), line);
        }
        3 => {
            let at = rng.below(lines.len());
            let extreme = PIECES[17 + rng.below(3)];
            let words: Vec<String> = lines[at]
                .split(' ')
                .map(|w| {
                    let number = w.trim_end_matches(',');
                    match number.parse::<u64>().is_ok() && rng.below(2) == 0 {
                        true => format!("{extreme}{}", &w[number.len()..]),
                        false => w.into(),
                    }
                })
                .collect();
            lines[at] = words.join(" ");
        }
        4 => {
            let chars: Vec<char> = text.chars().collect();
            return chars[..rng.below(chars.len())].iter().collect();
        }
        5 => {
            let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
            lines.swap(a, b);
        }
        _ => {
            let line: String = (0..1 + rng.below(4)).map(|_| PIECES[rng.below(PIECES.len())]).collect();
            lines.insert(rng.below(lines.len() + 1), line);
        }
    }
    lines.join("\n") + "\n"
}

/// Many mutated manifests, deterministically seeded: the parser returns `Ok` or `Err`
/// on each, never panics; what it accepts passes the signature consistency check.
#[test]
fn no_manifest_text_makes_the_parser_panic() {
    let s = Scratch::new("fuzz");
    let art = build_mlp(&s.0);
    let (name, base) = members(&art).remove(0);
    let base = String::from_utf8(base).expect("manifest");
    assert!(name == "manifest.json" && base.starts_with("{\n  \"format\": 4,\n"), "{name}:\n{base}");
    let cuda = base
        .replace("\"target\": \"cpu\"", "\"target\": {\"cuda\": \"sm_80\"}")
        .replace("\"sync\": false", "\"sync\": true");
    assert!(manifest::parse(&cuda).is_ok(), "{cuda}");
    let mut rng = Rng(0x00c0_ffee);
    let (mut ok, mut refused) = (0, 0);
    for i in 0..20_000 {
        let mut text = if i % 2 == 0 { base.clone() } else { cuda.clone() };
        for _ in 0..1 + rng.below(4) {
            text = mutate(&text, &mut rng);
        }
        match std::panic::catch_unwind(|| manifest::parse(&text)) {
            Ok(Ok(m)) => {
                ok += 1;
                for f in &m.artifact.funcs {
                    assert_eq!(manifest::check_signature(&f.name, &f.sig), Ok(()), "accepted:\n{text}");
                }
            }
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!("the parser panicked on:\n{text:?}"),
        }
    }
    assert!(ok > 100 && refused > 10_000, "{ok} accepted, {refused} refused");
    assert_eq!(manifest::parse("archx 2\n"), Err(ManifestError::OldFormat("archx 2".into())));
    assert_eq!(manifest::parse("archx 3\ntarget cpu\n"), Err(ManifestError::OldFormat("archx 3".into())));
    assert!(matches!(manifest::parse(""), Err(ManifestError::Json(_))));
}
