//! Lets go of the pages of code and constants that the program's start mapped, once a long
//! command (`referrals export`) has started its work (Linux).
//!
//! The kernel maps a program's code in blocks of 64 KiB around each page that runs, and the
//! start of the program (arguments, the client, the runtime, the plan of an export) runs code
//! that the work after it never runs again: an export of 100,000 referrals had 10.6 to 11.2
//! MiB of file pages mapped at its peak, where what its readers and writers run maps 7.7 to
//! 9.2 MiB. Unmapping every read-only segment of the loaded objects once, before the export's
//! readers start, leaves mapped only what runs after it: the next access to a page maps it
//! again, with the same bytes, from the page cache where it still is (a minor fault).
//!
//! A segment is unmapped only when none of its pages was written since it was mapped: a
//! debugger's breakpoint or a probe writes a private copy of its page, which unmapping would
//! drop. `/proc/self/pagemap` tells each page's kind, and a segment with a private copy (or
//! one that the file cannot tell) is left as it is. What is left is the window between a
//! segment's check and its unmapping (well under a millisecond), in which a probe set from
//! outside the process would be lost.
//!
//! Written by hand: no crate gives this back, and it is two system calls over the loader's
//! list of segments.

/// Unmaps the read-only segments of every loaded object that hold no written page; gives how
/// many bytes of address space it unmapped (not all of it was mapped).
#[cfg(target_os = "linux")]
pub(crate) fn release_mapped_code() -> usize {
    let page = page_size();
    let Ok(pagemap) = std::fs::File::open("/proc/self/pagemap") else {
        return 0;
    };
    let mut released = 0;
    for range in linux::read_only_segments(page) {
        if linux::unwritten(&pagemap, &range, page).unwrap_or(false) {
            released = linux::unmap(range).saturating_add(released);
        }
    }
    tracing::debug!(released, "unmapped the read-only segments of the start");
    released
}

/// Elsewhere the pages stay mapped.
#[cfg(not(target_os = "linux"))]
pub(crate) fn release_mapped_code() -> usize {
    0
}

#[cfg(target_os = "linux")]
fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant of the system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|size| *size > 0)
        .unwrap_or(4096)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::CStr;
    use std::fs::File;
    use std::io;
    use std::ops::Range;
    use std::os::unix::fs::FileExt as _;

    /// A page's entry in `/proc/self/pagemap`: present, swapped, and a page of a file (or
    /// shared), in bits 63, 62 and 61 (the kernel's `Documentation/admin-guide/mm/pagemap.rst`).
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    const FILE_PAGE: u64 = 1 << 61;

    /// Entries read at once.
    const ENTRIES: usize = 512;

    /// The whole pages of the loaded objects' segments that are neither writable nor the
    /// kernel's own (the vDSO), in the order of the loader's list.
    pub(super) fn read_only_segments(page: usize) -> Vec<Range<usize>> {
        let mut ranges: Vec<Range<usize>> = Vec::new();
        // SAFETY: the callback reads only what the loader hands it for the time of the call,
        // and the data pointer is `ranges`, alive and not otherwise borrowed meanwhile.
        unsafe {
            libc::dl_iterate_phdr(Some(each), (&raw mut ranges).cast());
        }
        ranges
            .into_iter()
            .filter_map(|range| {
                let start = range.start.checked_next_multiple_of(page)?;
                let end = range.end - range.end % page;
                (start < end).then_some(start..end)
            })
            .collect()
    }

    /// Adds the read-only loaded segments of one object to the `Vec` that `data` points to.
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid entry, and `data` is the `Vec` of
        // `read_only_segments`, borrowed by nothing else during the iteration.
        let (info, ranges) = unsafe { (&*info, &mut *data.cast::<Vec<Range<usize>>>()) };
        let name = if info.dlpi_name.is_null() {
            c""
        } else {
            // SAFETY: a non-null name is the loader's NUL-terminated string.
            unsafe { CStr::from_ptr(info.dlpi_name) }
        };
        if name.to_bytes().starts_with(b"linux-") || info.dlpi_phdr.is_null() {
            return 0;
        }
        // SAFETY: the loader's program headers, `dlpi_phnum` of them.
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        for header in headers {
            if header.p_type != libc::PT_LOAD || header.p_flags & libc::PF_W != 0 {
                continue;
            }
            let start = usize::try_from(info.dlpi_addr)
                .ok()
                .zip(usize::try_from(header.p_vaddr).ok())
                .and_then(|(base, offset)| base.checked_add(offset));
            let size = usize::try_from(header.p_memsz).ok();
            if let Some(range) = start.zip(size).and_then(|(start, size)| {
                let end = start.checked_add(size)?;
                Some(start..end)
            }) {
                ranges.push(range);
            }
        }
        0
    }

    /// Whether no page of `range` (whole pages) is a private copy: each is either not there
    /// or the file's own page.
    pub(super) fn unwritten(pagemap: &File, range: &Range<usize>, page: usize) -> io::Result<bool> {
        let mut entries = vec![0u8; ENTRIES * 8];
        let (mut first, last) = (range.start / page, range.end / page);
        while first < last {
            let count = (last - first).min(ENTRIES);
            let offset = u64::try_from(first)
                .ok()
                .and_then(|first| first.checked_mul(8))
                .ok_or_else(|| io::Error::other("a page's entry past the file's end"))?;
            pagemap.read_exact_at(&mut entries[..count * 8], offset)?;
            let copied = entries[..count * 8]
                .chunks_exact(8)
                .map(|entry| u64::from_le_bytes(entry.try_into().unwrap_or_default()))
                .any(private_copy);
            if copied {
                return Ok(false);
            }
            first += count;
        }
        Ok(true)
    }

    /// Whether an entry of pagemap is a page that this process holds a copy of of its own.
    pub(super) fn private_copy(entry: u64) -> bool {
        entry & (PRESENT | SWAPPED) != 0 && entry & FILE_PAGE == 0
    }

    /// Unmaps the pages of `range`; gives its length, or 0 when the system refused.
    pub(super) fn unmap(range: Range<usize>) -> usize {
        let length = range.len();
        // SAFETY: `range` is whole pages of a read-only private mapping of a loaded object's
        // file, none of them a private copy: after MADV_DONTNEED the next access maps the
        // file's page again, the same bytes. Nothing refers to the mapping itself.
        let done = unsafe {
            libc::madvise(
                range.start as *mut libc::c_void,
                length,
                libc::MADV_DONTNEED,
            )
        };
        if done == 0 { length } else { 0 }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::linux;

    #[test]
    fn a_page_of_the_file_or_none_is_not_a_private_copy() {
        let present = 1 << 63;
        let swapped = 1 << 62;
        let file = 1 << 61;
        assert!(!linux::private_copy(0));
        assert!(!linux::private_copy(present | file | 1234));
        assert!(linux::private_copy(present));
        assert!(linux::private_copy(swapped));
    }

    #[test]
    fn the_programs_code_is_a_read_only_segment_that_no_one_wrote() {
        let page = super::page_size();
        let here = the_programs_code_is_a_read_only_segment_that_no_one_wrote as *const () as usize;
        let segments = linux::read_only_segments(page);
        let code = segments
            .iter()
            .find(|range| range.contains(&here))
            .expect("this function's page is in a read-only segment");
        let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
        assert!(linux::unwritten(&pagemap, code, page).unwrap());
        assert!(
            segments
                .iter()
                .all(|range| range.start % page == 0 && range.end % page == 0)
        );
    }

    #[test]
    fn a_page_written_in_a_private_mapping_of_a_file_is_a_private_copy() {
        use std::io::Write as _;
        use std::os::fd::AsRawFd as _;
        let page = super::page_size();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![7u8; 2 * page]).unwrap();
        // SAFETY: a new private mapping of the test's own file, unmapped at the end.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let start = base as usize;
        // SAFETY: both pages are inside the mapping.
        unsafe {
            assert_eq!(std::ptr::read_volatile(base.cast::<u8>()), 7);
            std::ptr::write_volatile(base.cast::<u8>().add(page), 8);
        }
        let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
        let read = linux::unwritten(&pagemap, &(start..start + page), page).unwrap();
        let written = linux::unwritten(&pagemap, &(start + page..start + 2 * page), page).unwrap();
        let both = linux::unwritten(&pagemap, &(start..start + 2 * page), page).unwrap();
        // SAFETY: the mapping made above, not used after.
        unsafe { libc::munmap(base, 2 * page) };
        assert!(read, "a page only read is the file's");
        assert!(!written, "a page written is a copy of this process");
        assert!(!both);
    }

    #[test]
    fn the_program_runs_on_after_its_code_was_unmapped() {
        let released = super::release_mapped_code();
        assert!(released > 0);
        // The code and constants of the test are mapped again as they run.
        let text: String = ["still", "here"].join(" ");
        assert_eq!(format!("{text}!"), "still here!");
    }
}
