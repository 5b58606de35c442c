//! How `referrals` is linked: with packed relative relocations where the build machine's glibc
//! loads them (see `build.rs`), which the program's peak memory depends on.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

/// The tag of the dynamic section's entry that points at packed relative relocations.
const DT_RELR: u64 = 36;
/// The type of the program header of the dynamic section.
const PT_DYNAMIC: u32 = 2;

#[test]
fn the_program_is_linked_with_packed_relocations_where_glibc_loads_them() {
    // SAFETY: gnu_get_libc_version takes nothing and returns a static NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    let version = version.to_str().expect("glibc's version is ASCII");
    let mut parts = version
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let glibc = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let program = std::fs::read(env!("CARGO_BIN_EXE_referrals")).expect("the program is built");
    let tags = dynamic_tags(&program).expect("the program is a 64-bit little-endian ELF file");
    assert_eq!(
        tags.contains(&DT_RELR),
        glibc >= (2, 36),
        "glibc {version}: the dynamic section's tags are {tags:?}"
    );
}

/// The tags of the dynamic section of a 64-bit little-endian ELF file, or `None` if `file`
/// is not one. Read by hand: two fixed tables, for which a crate would be a new dependency.
fn dynamic_tags(file: &[u8]) -> Option<Vec<u64>> {
    if file.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(file.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(file.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(file.get(at..at + 8)?.try_into().ok()?));
    let headers = usize::try_from(u64_at(0x20)?).ok()?;
    let (size, count) = (usize::from(u16_at(0x36)?), usize::from(u16_at(0x38)?));
    let dynamic = (0..count)
        .map(|index| headers.checked_add(index.checked_mul(size)?))
        .find(|header| header.and_then(u32_at) == Some(PT_DYNAMIC))??;
    let offset = usize::try_from(u64_at(dynamic.checked_add(8)?)?).ok()?;
    let length = usize::try_from(u64_at(dynamic.checked_add(32)?)?).ok()?;
    let tags = (0..length / 16)
        .map_while(|entry| u64_at(offset.checked_add(entry.checked_mul(16)?)?))
        .take_while(|&tag| tag != 0)
        .collect();
    Some(tags)
}
