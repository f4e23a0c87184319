//! `KeepingAllocator` (installed here as this test binary's allocator): large freed blocks
//! are kept and come back for requests of their exact size, zeroed when asked, never while
//! in use; other sizes return them to the system.

use strideconv::memory::{kept_bytes, KeepingAllocator, KEEP_MAX_BYTES, KEEP_MIN_BYTES};

#[global_allocator]
static ALLOC: KeepingAllocator = KeepingAllocator::new();

/// The kept blocks are process-wide: the tests take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn large_blocks_are_kept_reused_for_their_size_and_zeroed_when_asked() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let n = KEEP_MIN_BYTES + 4096;
    // A large request of a size no block has returns every kept block to the system (the
    // other test may have left some); that block is then kept, until `a` (another size).
    drop(vec![1u8; n + 1]);
    assert_eq!(kept_bytes(), n + 1);
    let mut a = vec![7u8; n];
    assert_eq!(kept_bytes(), 0);
    // Small blocks are not kept.
    drop(vec![3u8; 1 << 20]);
    assert_eq!(kept_bytes(), 0);
    a[n - 1] = 9;
    let first = a.as_ptr();
    drop(a);
    assert_eq!(kept_bytes(), n, "a freed large block was not kept");
    // The kept block comes back for the same size, and `vec!` of zeros (alloc_zeroed)
    // sees only zeros in it.
    let b = vec![0u8; n];
    assert_eq!(b.as_ptr(), first, "the kept block was not reused");
    assert_eq!(kept_bytes(), 0);
    assert!(b.iter().all(|&v| v == 0), "a reused block was not zeroed");
    // While `b` lives, another request of its size gets other memory.
    let c = vec![1u8; n];
    assert_ne!(c.as_ptr(), b.as_ptr());
    assert!(b.iter().all(|&v| v == 0) && c.iter().all(|&v| v == 1));
    let e = vec![2u8; n];
    drop(b);
    drop(c);
    assert_eq!(kept_bytes(), 2 * n, "two blocks are kept");
    // A third is freed to the system.
    drop(e);
    assert_eq!(kept_bytes(), 2 * n);
    // A large request of another size returns every kept block to the system first.
    let d = vec![4u64; n / 8 + 1024];
    assert_eq!(kept_bytes(), 0);
    assert!(d.iter().all(|&v| v == 4));
    drop(d);
    // Growing through the range works (realloc goes to the system).
    let mut grown = vec![5u8; KEEP_MIN_BYTES];
    grown.resize(2 * KEEP_MIN_BYTES, 6);
    assert!(grown[..KEEP_MIN_BYTES].iter().all(|&v| v == 5));
    assert!(grown[KEEP_MIN_BYTES..].iter().all(|&v| v == 6));
    drop(grown);
    // Blocks above the largest kept size are not kept.
    let kept_before = kept_bytes();
    drop(Vec::<u8>::with_capacity(KEEP_MAX_BYTES + 1));
    assert_eq!(kept_bytes(), kept_before);
}

/// Every method writes a correct output into a reused block that held other values (each
/// overwrites its whole output here; one that added into it would rely on the zeroing).
#[test]
fn every_method_is_right_on_a_reused_output_block() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    use ndarray::{ArrayD, IxDyn};
    use strideconv::{ConvSpec, Layout, Method, Options, Plan};
    // 2050² float64 outputs: 33.6 MB, above the smallest kept block.
    let (n, f) = (2052, 3);
    let layout = Layout::Signal {
        channel_axis: None,
        kernel_broadcast: false,
    };
    let spec = ConvSpec::new(&[n, n], &[f, f], layout, &Options::strided(1)).unwrap();
    let x = ArrayD::from_shape_fn(IxDyn(&[n, n]), |i| {
        ((i[0] * 7 + i[1] * 3) % 11) as f64 - 5.0
    });
    let k = ArrayD::from_shape_fn(IxDyn(&[f, f]), |i| (i[0] * f + i[1]) as f64 - 4.0);
    let reference = Plan::<f64>::new(spec.clone(), Method::Naive, Some(1))
        .unwrap()
        .execute(x.view(), k.view())
        .unwrap();
    let out_len = reference.len();
    assert!(out_len * 8 >= KEEP_MIN_BYTES);
    for m in Method::ALL {
        let Ok(plan) = Plan::<f64>::new(spec.clone(), m, Some(2)) else {
            continue;
        };
        // Leave both kept blocks of the output's size and full of other values.
        let (a, b) = (vec![1e6f64; out_len], vec![-1e6f64; out_len]);
        drop((a, b));
        assert_eq!(kept_bytes(), 2 * out_len * 8);
        let got = plan.execute(x.view(), k.view()).unwrap();
        let worst = (&got - &reference).iter().fold(0f64, |a, v| a.max(v.abs()));
        assert!(worst < 1e-9, "{m}: off by {worst} on a reused block");
    }
}
