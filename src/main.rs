// mimalloc: the request path allocates many small strings; the system
// allocator showed as ~18% of a read-load profile.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> std::process::ExitCode {
    qcgate::cli::main()
}

/// mimalloc behind `GlobalAlloc`, asking for alignment only when it matters.
///
/// The `mimalloc` crate passes every layout to `mi_malloc_aligned`. In
/// mimalloc 3 that sends blocks over 1 KiB whose size is not a power of two
/// (hyper's 8 KiB-plus read buffers, reply bodies) down its over-allocating
/// aligned path even for byte alignment: 2.4% of the runtime workers' samples
/// in the write phase. `mi_malloc` already aligns every block to 16 bytes,
/// or to its size when smaller, the rule the standard library's own
/// allocators use to skip aligned allocation.
struct MiMalloc;

/// What `mi_malloc` guarantees on every target qcgate builds for.
const MIN_ALIGN: usize = 16;

type Plain = unsafe extern "C" fn(usize) -> *mut std::ffi::c_void;
type Aligned = unsafe extern "C" fn(usize, usize) -> *mut std::ffi::c_void;

/// Allocates with `plain` when mimalloc's own alignment is enough.
///
/// # Safety
/// `plain` and `aligned` are mimalloc's allocation functions.
#[inline]
unsafe fn by_layout(layout: std::alloc::Layout, plain: Plain, aligned: Aligned) -> *mut u8 {
    // SAFETY: the caller passes mimalloc's functions.
    unsafe {
        if layout.align() <= MIN_ALIGN && layout.align() <= layout.size() {
            plain(layout.size()).cast()
        } else {
            aligned(layout.size(), layout.align()).cast()
        }
    }
}

// SAFETY: every block comes from mimalloc and goes back to `mi_free`, which
// accepts blocks of either kind of allocation; the layout rules above keep
// each block aligned as asked.
unsafe impl std::alloc::GlobalAlloc for MiMalloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys::{mi_malloc, mi_malloc_aligned};
        // SAFETY: plain C allocation calls; a null return is passed on.
        unsafe { by_layout(layout, mi_malloc, mi_malloc_aligned) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys::{mi_zalloc, mi_zalloc_aligned};
        // SAFETY: as in `alloc`.
        unsafe { by_layout(layout, mi_zalloc, mi_zalloc_aligned) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from this allocator (GlobalAlloc's contract).
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        use libmimalloc_sys::{mi_realloc, mi_realloc_aligned};
        // SAFETY: `ptr` came from this allocator with `layout`; the new
        // block keeps `layout`'s alignment, by the same rule as `alloc`.
        unsafe {
            if layout.align() <= MIN_ALIGN && layout.align() <= new_size {
                mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{GlobalAlloc, Layout};

    #[test]
    fn blocks_keep_their_alignment_and_bytes_through_realloc() {
        for align in [1, 2, 8, 16, 32, 64, 128, 4096] {
            for size in [1, 7, 8, 24, 100, 1500, 8200, 70_000] {
                let layout = Layout::from_size_align(size, align).expect("layout");
                // Grown, shrunk below the alignment, and shrunk a little.
                for new in [size * 3, 1, size / 2 + 1] {
                    // SAFETY: non-zero sizes; every block is freed with the
                    // layout it has then.
                    unsafe {
                        let p = GLOBAL.alloc(layout);
                        assert!(!p.is_null());
                        assert_eq!(p as usize % align, 0, "alloc {size} @ {align}");
                        p.write_bytes(0xA5, size);
                        let q = GLOBAL.realloc(p, layout, new);
                        assert!(!q.is_null());
                        assert_eq!(q as usize % align, 0, "realloc {size} → {new} @ {align}");
                        assert!((0..size.min(new)).all(|i| *q.add(i) == 0xA5), "bytes lost");
                        GLOBAL.dealloc(q, Layout::from_size_align(new, align).expect("layout"));
                    }
                }
                // SAFETY: as above.
                unsafe {
                    let z = GLOBAL.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed {size} @ {align}");
                    assert!((0..size).all(|i| *z.add(i) == 0), "not zeroed");
                    GLOBAL.dealloc(z, layout);
                }
            }
        }
    }
}
