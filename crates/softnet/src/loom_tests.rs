//! loom model of the RPS hand-over: one CPU feeds another CPU's backlog
//! while that CPU drains it with `process_backlog`.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p
//! softnet --profile loom --target-dir target/loom --lib loom`.

use std::sync::Arc as StdArc;

use irq::{CpuWakeup, Softirqs};
use napi::{PollLists, napi_poll, netif_napi_add_weight};
use netcore::{Instant, PagePool, PagePoolParams, SizeClass, SkBuff};

use crate::backlog::{BacklogPoll, BacklogQueue, enqueue_to_backlog};
use crate::sync::Arc;

/// Every packet CPU 0 queues for CPU 1 is delivered on CPU 1 exactly once
/// and in order, whatever the interleaving of `enqueue_to_backlog` and
/// `process_backlog`, and the backlog NAPI ends idle with an empty queue:
/// no packet is ever stranded behind an idle NAPI.
#[test]
fn rps_enqueue_vs_process_backlog() {
    loom::model(|| {
        let pool = PagePool::new(PagePoolParams {
            small: SizeClass {
                buf_size: 256,
                pool_size: 8,
                limit: None,
            },
            large: None,
        })
        .unwrap();
        let lists = PollLists::new(2).unwrap();
        let softirqs = StdArc::new(Softirqs::new(2, CpuWakeup::new()).unwrap());
        let q = Arc::new(BacklogQueue::new(1));
        // Weight 1: the consumer yields after every packet, so repolls and
        // the splice of the input queue interleave with the producer.
        let backlog =
            netif_napi_add_weight(&lists, 0, BacklogPoll::new(Arc::clone(&q)), 1).unwrap();
        backlog.napi_enable().unwrap();

        let skbs: Vec<SkBuff> = (0u8..2)
            .map(|i| SkBuff::from_slice(&pool, 0, &[i; 4]).unwrap())
            .collect();
        let producer = {
            let q = Arc::clone(&q);
            let backlog = Arc::clone(&backlog);
            let softirqs = StdArc::clone(&softirqs);
            loom::thread::spawn(move || {
                for skb in skbs {
                    let _ = enqueue_to_backlog(&q, &backlog, &softirqs, skb, 16, Some(0));
                }
            })
        };

        // CPU 1's runner: poll what is listed, a bounded number of times.
        let mut delivered: Vec<SkBuff> = Vec::new();
        let cpu1 = lists.cpu(1).unwrap();
        for _ in 0..3 {
            if let Some(n) = cpu1.pop_front() {
                let r = napi_poll(&n, 1, &softirqs, &mut delivered, Instant::ZERO).unwrap();
                if r.repoll {
                    cpu1.list_add_tail(n);
                }
            }
        }
        producer.join().unwrap();
        // After the producer is done: drain until nothing is listed.
        while let Some(n) = cpu1.pop_front() {
            let r = napi_poll(&n, 1, &softirqs, &mut delivered, Instant::ZERO).unwrap();
            if r.repoll {
                cpu1.list_add_tail(n);
            }
        }
        let order: Vec<u8> = delivered.iter().map(|s| s.data()[0]).collect();
        assert_eq!(order, [0, 1], "each packet once, in order");
        assert!(!backlog.napi_is_scheduled(), "the backlog ends idle");
        assert_eq!(q.input_qlen() + q.process_qlen(), 0);
        assert!(
            lists.cpu(0).unwrap().is_empty(),
            "scheduled on the target only"
        );
    });
}
