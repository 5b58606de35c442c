//! Generates the `api` commands from the OpenAPI document (feature `codegen`, on by default);
//! `cargo xtask codegen` writes the same text to `generated/cli.rs`, which the build compiles
//! without the feature. And links `referrals` with packed relative relocations where that is
//! known to work.

fn main() {
    #[cfg(feature = "codegen")]
    referrals_codegen::build_script(referrals_codegen::Part::Cli);
    let packed = packed_relocations();
    if packed {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    // What the linking test expects of the program.
    println!(
        "cargo::rustc-env=REFERRALS_PACKED_RELOCATIONS={}",
        u8::from(packed)
    );
}

/// The first glibc that loads packed relative relocations (`DT_RELR`).
const RELR_GLIBC: (u32, u32) = (2, 36);

/// The variable that turns packed relocations off (`0`), for a program to be run on a
/// machine with an older glibc than the one it is built on.
const OPT_OUT: &str = "REFERRALS_PACK_RELOCS";

/// Whether to ask the linker for packed relative relocations (`-z pack-relative-relocs`).
///
/// A position-independent program is moved at every start, and each pointer of its tables
/// (vtables, strings of `clap`, the model's tables) is fixed then from a list of relocations:
/// 570 KiB for `referrals`, read from the file by every process. Packed, the same list takes
/// 6 KiB, and an export's peak memory is about 1 MiB lower (`cargo xtask bench --only cli`).
///
/// Asked only where it is known to work: a native build for x86_64 Linux with glibc, linked
/// by the linker rustc brings (rust-lld, the default since Rust 1.90; no linker or linker
/// flags chosen by the user: gold refuses the option, and older linkers ignore it), on a
/// machine whose glibc is 2.36 or later. A program so linked needs glibc 2.36 or later to
/// start, wherever it is copied: `REFERRALS_PACK_RELOCS=0` builds one without.
fn packed_relocations() -> bool {
    for variable in [OPT_OUT, "RUSTC_LINKER"] {
        println!("cargo::rerun-if-env-changed={variable}");
    }
    let var = |key: &str| std::env::var(key).unwrap_or_default();
    let native_x86_64_gnu = var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("HOST") == var("TARGET");
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let own_linker = std::env::var_os("RUSTC_LINKER").is_some()
        || ["linker", "fuse-ld", "link-self-contained"]
            .iter()
            .any(|flag| flags.contains(flag));
    native_x86_64_gnu
        && !own_linker
        && var(OPT_OUT) != "0"
        && glibc().is_some_and(|version| version >= RELR_GLIBC)
}

/// The version of the GNU C library this build script runs with (the build machine's).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn glibc() -> Option<(u32, u32)> {
    // SAFETY: gnu_get_libc_version takes nothing and returns a static NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    let mut parts = version.to_str().ok()?.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// A build machine without the GNU C library gives no version.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn glibc() -> Option<(u32, u32)> {
    None
}
