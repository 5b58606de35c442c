//! How `referrals` is linked: with packed relative relocations where its build script asked
//! for them (see `build.rs`), which the program's peak memory depends on.
#![cfg(all(
    target_os = "linux",
    target_pointer_width = "64",
    target_endian = "little"
))]

/// The tag of the dynamic section's entry that points at packed relative relocations.
const DT_RELR: u64 = 36;
/// The type of the program header of the dynamic section.
const PT_DYNAMIC: u32 = 2;

#[test]
fn the_program_has_packed_relocations_where_the_build_asked_for_them() {
    let asked = env!("REFERRALS_PACKED_RELOCATIONS") == "1";
    let program = std::fs::read(env!("CARGO_BIN_EXE_referrals")).expect("the program is built");
    let tags = dynamic_tags(&program).expect("a 64-bit little-endian ELF file, dynamically linked");
    assert_eq!(
        tags.contains(&DT_RELR),
        asked,
        "packed relocations asked: {asked}; the dynamic section's tags: {tags:?}"
    );
}

/// The tags of the dynamic section of a 64-bit little-endian ELF file, or `None` if `file`
/// is not one or has no such section. Read by hand: two fixed tables, for which a crate would
/// be a new dependency.
fn dynamic_tags(file: &[u8]) -> Option<Vec<u64>> {
    if file.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let bytes = |at: usize, length: usize| file.get(at..at.checked_add(length)?);
    let u16_at = |at| Some(u16::from_le_bytes(bytes(at, 2)?.try_into().ok()?));
    let u32_at = |at| Some(u32::from_le_bytes(bytes(at, 4)?.try_into().ok()?));
    let u64_at = |at| Some(u64::from_le_bytes(bytes(at, 8)?.try_into().ok()?));
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
