//! Handing back the code that only start-up runs.
//!
//! Most of a prober's resident memory is pages of its own program file
//! (docs/performance.md, memory), and start-up (the command line, the
//! config, the migrations, the first look at the database) runs code that
//! probing never runs again. The kernel maps a program's pages as they are
//! first run, in blocks around each one, and leaves them mapped: once the
//! prober is ready, those pages still count in its RSS. Unmapping the
//! program's read-only pages then lets only what runs from there on be
//! mapped again. Nothing is lost: they are clean pages of the file, which
//! stay in the page cache, shared and reclaimable, and a page that is
//! needed again is mapped again from there on its first use (read from the
//! file only if the kernel has reclaimed it meanwhile, as for any page of a
//! program).

/// Unmaps this process's read-only pages of the program file (its machine
/// code and constants, never the relocated or writable data), and returns
/// how many bytes that covered. Linux only; elsewhere nothing happens.
pub fn release_startup_code() -> usize {
    #[cfg(target_os = "linux")]
    {
        let mut released = 0usize;
        // SAFETY: the callback only reads the program headers the loader
        // hands it, for the duration of the call, and writes to `released`,
        // which outlives the call.
        unsafe {
            libc::dl_iterate_phdr(Some(release_program), (&raw mut released).cast());
        }
        released
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// Called for each loaded object; the first is the program itself, and the
/// only one handled (returning non-zero ends the walk). scripts/link-order.sh
/// finds the end of start-up by this function's name.
#[cfg(target_os = "linux")]
unsafe extern "C" fn release_program(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    released: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: the loader passes a valid `dl_phdr_info` whose `dlpi_phdr`
    // points to `dlpi_phnum` program headers; `released` is the `usize`
    // passed to `dl_iterate_phdr` above.
    unsafe {
        let info = &*info;
        let released = &mut *released.cast::<usize>();
        let page = libc::sysconf(libc::_SC_PAGESIZE).max(4096) as usize;
        let headers = std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum));
        for header in headers {
            // Writable segments hold the relocated pointers and the program's
            // variables: those pages are this process's own and must stay.
            if header.p_type != libc::PT_LOAD || header.p_flags & libc::PF_W != 0 {
                continue;
            }
            let start = info.dlpi_addr as usize + header.p_vaddr as usize;
            let end = start + header.p_memsz as usize;
            // Whole pages inside the segment only.
            let first = start.next_multiple_of(page);
            let last = end / page * page;
            if last <= first {
                continue;
            }
            if libc::madvise(
                first as *mut libc::c_void,
                last - first,
                libc::MADV_DONTNEED,
            ) == 0
            {
                *released += last - first;
            }
        }
    }
    1
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The resident KiB of this test program's machine code.
    fn resident_code_kib() -> u64 {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_string_lossy().into_owned();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut in_code = false;
        let mut total = 0;
        for line in smaps.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields
                .first()
                .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
            {
                in_code = fields.get(1) == Some(&"r-xp") && fields.last() == Some(&exe.as_str());
            } else if in_code && fields.first() == Some(&"Rss:") {
                total += fields[1].parse::<u64>().unwrap();
            }
        }
        total
    }

    #[test]
    fn the_code_that_ran_is_unmapped_and_what_runs_next_is_mapped_again() {
        let before = resident_code_kib();
        assert!(before > 0, "the test program's code is not mapped");
        let released = release_startup_code();
        let after = resident_code_kib();
        assert!(
            released as u64 / 1024 >= before,
            "released {released} bytes, {before} KiB were resident"
        );
        assert!(
            after < before,
            "resident code {before} KiB before, {after} KiB after"
        );
        // Code runs on from the page cache: this call runs code that was
        // unmapped, and answers as before.
        assert!(resident_code_kib() > 0);
    }
}
