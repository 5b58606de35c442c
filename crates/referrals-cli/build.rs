//! Generates the `api` commands from the OpenAPI document (feature `codegen`, on by default);
//! `cargo xtask codegen` writes the same text to `generated/cli.rs`, which the build compiles
//! without the feature. And links `referrals` with packed relative relocations where the C
//! library can load them.

fn main() {
    #[cfg(feature = "codegen")]
    referrals_codegen::build_script(referrals_codegen::Part::Cli);
    packed_relocations();
}

/// The first glibc that loads packed relative relocations (`DT_RELR`).
const RELR_GLIBC: (u32, u32) = (2, 36);

/// Asks the linker for packed relative relocations (`-z pack-relative-relocs`) when the
/// program is built for the GNU C library on Linux, on a machine whose glibc loads them.
///
/// A position-independent program is moved at every start, and each pointer of its tables
/// (vtables, strings of `clap`, the model's tables) is fixed then from a list of relocations:
/// 570 KiB for `referrals`, read from the file by every process. Packed, the same list takes
/// 6 KiB, and an export's peak memory is about 1 MiB lower (`cargo xtask bench --only cli`).
/// A program so linked needs glibc 2.36 or later to start; the version is the build machine's,
/// so a build for another target (a cross build) is left as it was. A linker that does not
/// know the option (GNU ld before 2.38) warns and ignores it.
fn packed_relocations() {
    let var = |key: &str| std::env::var(key).unwrap_or_default();
    let linux_gnu = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    if !linux_gnu || var("HOST") != var("TARGET") {
        return;
    }
    if glibc().is_some_and(|version| version >= RELR_GLIBC) {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
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
