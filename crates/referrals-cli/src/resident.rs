//! Drops the pages of code and constants that the program's start had mapped, once a long
//! command (`referrals export`) has started its work (Linux).
//!
//! The kernel maps a program's code in blocks of 64 KiB around each page that runs, and the
//! start of the program (arguments, the client, the runtime, the plan of an export) runs much
//! code that the work after it never runs again: an export of 100,000 referrals had 10.6 to
//! 11.2 MiB of file pages mapped at its peak, where what its readers and writers run maps 7.7
//! to 9.2 MiB. Dropping the pages of every read-only segment of the loaded objects once,
//! before the export's readers start, leaves mapped only what runs after it: the mappings stay,
//! and the next access to a page maps it again, with the same bytes, from the page cache
//! (usually a minor fault; a read from the disk when the kernel took the page back meanwhile).
//!
//! A segment's pages are dropped only when none of them was written since it was mapped: a
//! debugger's breakpoint, a probe or a text relocation writes a private copy of its page, which
//! dropping would lose. `/proc/self/pagemap` tells each page's kind, and a segment with a
//! private copy (or one that the file cannot tell) is left as it is. What is left is the window
//! between a segment's check and the drop of its pages (well under a millisecond): a probe set
//! from outside the process meanwhile would be lost, as would a library that another thread
//! loads (`dlopen`) and relocates, or unloads (`dlclose`) and whose addresses are mapped again,
//! meanwhile; `referrals` unloads none, and loads none while an export starts.
//!
//! Written by hand: no crate does this, and it is two system calls over the loader's list of
//! segments.

/// Drops the pages of the read-only segments of every loaded object that hold no written
/// page; gives how many bytes of address space they span (not all of it was mapped).
#[cfg(target_os = "linux")]
pub(crate) fn drop_read_only_pages() -> usize {
    let page = page_size();
    let Ok(pagemap) = std::fs::File::open("/proc/self/pagemap") else {
        return 0;
    };
    let mut dropped = 0;
    for range in linux::read_only_segments(page) {
        dropped = linux::drop_if_unwritten(&pagemap, range, page).saturating_add(dropped);
    }
    tracing::debug!(dropped, "dropped the pages of the read-only segments");
    dropped
}

/// Elsewhere the pages stay mapped.
#[cfg(not(target_os = "linux"))]
pub(crate) fn drop_read_only_pages() -> usize {
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
            .filter_map(|range| whole_pages(range, page))
            .collect()
    }

    /// The whole pages inside `range`, if any: a page shared with a neighbour is not one.
    pub(super) fn whole_pages(range: Range<usize>, page: usize) -> Option<Range<usize>> {
        let start = range.start.checked_next_multiple_of(page)?;
        let end = range.end - range.end % page;
        (start < end).then_some(start..end)
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
        // The vDSO is the kernel's, found at the address that the auxiliary vector gives.
        // SAFETY: getauxval only reads the process's auxiliary vector.
        let vdso = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) };
        if info.dlpi_phdr.is_null() || (vdso != 0 && in_object(info, vdso)) {
            return 0;
        }
        // SAFETY: the loader's program headers, `dlpi_phnum` of them.
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        for header in headers {
            if header.p_type != libc::PT_LOAD || header.p_flags & libc::PF_W != 0 {
                continue;
            }
            // The loader adds the two as addresses, wrapping (a load below the link address).
            let start = usize::try_from(info.dlpi_addr.wrapping_add(header.p_vaddr)).ok();
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

    /// Whether `address` is inside a loaded segment of the object that `info` describes.
    fn in_object(info: &libc::dl_phdr_info, address: libc::c_ulong) -> bool {
        // SAFETY: the loader's program headers, `dlpi_phnum` of them.
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        headers.iter().any(|header| {
            // Addresses and sizes are of one type on each target (64 or 32 bits).
            let start = info.dlpi_addr.wrapping_add(header.p_vaddr);
            let offset = address.wrapping_sub(start);
            header.p_type == libc::PT_LOAD && offset < header.p_memsz
        })
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
                .map(|entry| u64::from_ne_bytes(entry.try_into().unwrap_or_default()))
                .any(private_copy);
            if copied {
                return Ok(false);
            }
            first += count;
        }
        Ok(true)
    }

    /// Whether an entry of pagemap is a page of which this process holds a copy of its own
    /// (anonymous, or the zero page of a segment's part past its file's end).
    pub(super) fn private_copy(entry: u64) -> bool {
        entry & (PRESENT | SWAPPED) != 0 && entry & FILE_PAGE == 0
    }

    /// Drops the pages of `range` (whole pages of a read-only segment) when none of them is a
    /// private copy; gives its length, or 0 when they were kept or the system refused.
    pub(super) fn drop_if_unwritten(pagemap: &File, range: Range<usize>, page: usize) -> usize {
        if !unwritten(pagemap, &range, page).unwrap_or(false) {
            return 0;
        }
        let length = range.len();
        // SAFETY: `range` is whole pages of a read-only segment of a loaded object, none of
        // them a private copy: each is the file's page or not there. After MADV_DONTNEED the
        // mapping stays, and the next access maps the file's page again, the same bytes (or
        // the zero page, past the file's end, as before). Nothing is written through it.
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
    use std::sync::atomic::AtomicUsize;

    use super::linux;

    /// A static that the program may write: in a writable segment.
    static WRITTEN: AtomicUsize = AtomicUsize::new(1);

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
    fn a_segment_is_cut_to_the_pages_it_holds_whole() {
        let page = 4096;
        assert_eq!(
            linux::whole_pages(100..3 * page + 5, page),
            Some(page..3 * page)
        );
        assert_eq!(
            linux::whole_pages(page..2 * page, page),
            Some(page..2 * page)
        );
        assert_eq!(linux::whole_pages(100..page + 5, page), None);
        assert_eq!(linux::whole_pages(usize::MAX - 5..usize::MAX, page), None);
    }

    #[test]
    fn the_segments_are_the_code_not_the_data_nor_the_kernels() {
        let page = super::page_size();
        let segments = linux::read_only_segments(page);
        let code = the_segments_are_the_code_not_the_data_nor_the_kernels as *const ();
        let code = segments
            .iter()
            .find(|range| range.contains(&(code as usize)))
            .expect("this function's page is in a read-only segment");
        let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
        assert!(linux::unwritten(&pagemap, code, page).unwrap());
        let data = &raw const WRITTEN as usize;
        assert!(!segments.iter().any(|range| range.contains(&data)));
        // SAFETY: getauxval only reads the process's auxiliary vector.
        let vdso = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
        assert!(vdso == 0 || !segments.iter().any(|range| range.contains(&vdso)));
    }

    /// A private mapping of a new file of `pages` pages of 7s: its address, its length, and
    /// the file (kept open while it is mapped).
    fn mapped(pages: usize) -> (*mut u8, usize, std::fs::File) {
        use std::io::Write as _;
        use std::os::fd::AsRawFd as _;
        let length = pages * super::page_size();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![7u8; length]).unwrap();
        // SAFETY: a new private mapping of the test's own file, unmapped by the test.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                length,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        (base.cast(), length, file)
    }

    #[test]
    fn a_page_written_in_a_private_mapping_of_a_file_is_kept() {
        let page = super::page_size();
        let (base, length, _file) = mapped(600);
        let start = base as usize;
        let pages = |from: usize, to: usize| start + from * page..start + to * page;
        // SAFETY: pages 0 and 550 are inside the mapping.
        unsafe {
            assert_eq!(base.read_volatile(), 7);
            base.add(550 * page).write_volatile(8);
        }
        let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
        let unwritten = |range| linux::unwritten(&pagemap, &range, page).unwrap();
        assert!(unwritten(pages(0, 1)), "a page only read is the file's");
        assert!(unwritten(pages(0, 512)), "the first entries read at once");
        assert!(
            !unwritten(pages(550, 551)),
            "a page written is the process's"
        );
        assert!(
            !unwritten(pages(0, 600)),
            "found past the first entries read"
        );
        assert_eq!(linux::drop_if_unwritten(&pagemap, pages(0, 600), page), 0);
        assert_eq!(linux::drop_if_unwritten(&pagemap, pages(0, 1), page), page);
        let entry = |index: usize| {
            let mut bytes = [0u8; 8];
            let offset = ((start / page + index) * 8) as u64;
            std::os::unix::fs::FileExt::read_exact_at(&pagemap, &mut bytes, offset).unwrap();
            u64::from_ne_bytes(bytes)
        };
        assert_eq!(entry(0) >> 63, 0, "the page dropped is no longer there");
        assert_eq!(entry(550) >> 63, 1, "the page written is still there");
        // SAFETY: as above; the mapping is unmapped after.
        unsafe {
            assert_eq!(base.read_volatile(), 7, "the file's byte, mapped again");
            assert_eq!(base.add(550 * page).read_volatile(), 8, "the write kept");
            libc::munmap(base.cast(), length);
        }
    }

    /// A smoke test: the test program goes on running, its code and constants mapped again.
    #[test]
    fn the_program_runs_on_after_its_pages_were_dropped() {
        let dropped = super::drop_read_only_pages();
        if std::fs::File::open("/proc/self/pagemap").is_ok() {
            assert!(dropped > 0);
        }
        let text: String = ["still", "here"].join(" ");
        assert_eq!(format!("{text}!"), "still here!");
    }
}
