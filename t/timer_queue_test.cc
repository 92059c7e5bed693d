#include "zan/timer_queue.h"

#include <errno.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

using zan::TimerQueue;

TEST(TimerQueue, EmptyQueue)
{
    TimerQueue q;
    EXPECT_EQ(q.next_expiry(), -1);
    EXPECT_EQ(q.size(), 0u);
    q.run_expired(1000);
    EXPECT_EQ(q.last_fired(), 0u);
    EXPECT_FALSE(q.cancel(0));
    EXPECT_FALSE(q.cancel(12345));
}

TEST(TimerQueue, EmptyCallbackRejected)
{
    TimerQueue q;
    errno = 0;
    EXPECT_EQ(q.add(10, 0, nullptr), 0u);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueue, OneShotFiresOnceAtExpiry)
{
    TimerQueue q;
    int n = 0;
    TimerQueue::TimerId id = q.add(100, 0, [&] { ++n; });
    EXPECT_NE(id, 0u);
    EXPECT_EQ(q.next_expiry(), 100);
    q.run_expired(99);
    EXPECT_EQ(n, 0);
    q.run_expired(100);
    EXPECT_EQ(n, 1);
    EXPECT_EQ(q.last_fired(), 1u);
    q.run_expired(1000);
    EXPECT_EQ(n, 1);
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.next_expiry(), -1);
    EXPECT_FALSE(q.cancel(id));  // already fired
}

TEST(TimerQueue, PeriodicFiresEachInterval)
{
    TimerQueue q;
    int n = 0;
    q.add(10, 10, [&] { ++n; });
    q.run_expired(10);
    EXPECT_EQ(n, 1);
    EXPECT_EQ(q.next_expiry(), 20);
    q.run_expired(25);
    EXPECT_EQ(n, 2);
    EXPECT_EQ(q.next_expiry(), 30);  // drift-free: 20 + 10, not 25 + 10
    EXPECT_EQ(q.size(), 1u);
}

TEST(TimerQueue, PeriodicSkipsMissedPeriodsInsteadOfBursting)
{
    TimerQueue q;
    int n = 0;
    q.add(10, 10, [&] { ++n; });
    q.run_expired(1000);
    EXPECT_EQ(n, 1);
    EXPECT_EQ(q.next_expiry(), 1010);
}

TEST(TimerQueue, CancelPendingTimer)
{
    TimerQueue q;
    int a = 0, b = 0;
    TimerQueue::TimerId ia = q.add(10, 0, [&] { ++a; });
    q.add(20, 0, [&] { ++b; });
    EXPECT_TRUE(q.cancel(ia));
    EXPECT_FALSE(q.cancel(ia));
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.next_expiry(), 20);  // the cancelled head is not reported
    q.run_expired(100);
    EXPECT_EQ(a, 0);
    EXPECT_EQ(b, 1);
}

TEST(TimerQueue, StaleIdDoesNotCancelSlotReuser)
{
    TimerQueue q;
    int n = 0;
    TimerQueue::TimerId old = q.add(10, 0, [] {});
    ASSERT_TRUE(q.cancel(old));
    TimerQueue::TimerId fresh = q.add(10, 0, [&] { ++n; });
    EXPECT_NE(old, fresh);
    EXPECT_EQ(old & 0xffffffffu, fresh & 0xffffffffu);  // same slot, new generation
    EXPECT_FALSE(q.cancel(old));
    q.run_expired(10);
    EXPECT_EQ(n, 1);
}

TEST(TimerQueue, PeriodicCancelledFromOwnCallback)
{
    TimerQueue q;
    int n = 0;
    TimerQueue::TimerId id = 0;
    id = q.add(10, 10, [&] {
        ++n;
        if (n == 2) {
            EXPECT_TRUE(q.cancel(id));
        }
    });
    q.run_expired(10);
    q.run_expired(20);
    q.run_expired(30);
    q.run_expired(40);
    EXPECT_EQ(n, 2);
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.next_expiry(), -1);
}

TEST(TimerQueue, OneShotCancelFromOwnCallbackIsFalse)
{
    TimerQueue q;
    TimerQueue::TimerId id = 0;
    bool result = true;
    id = q.add(10, 0, [&] { result = q.cancel(id); });
    q.run_expired(10);
    EXPECT_FALSE(result);
}

TEST(TimerQueue, CallbackCancelsAnotherDueTimer)
{
    TimerQueue q;
    int second = 0;
    TimerQueue::TimerId id2 = 0;
    q.add(10, 0, [&] { EXPECT_TRUE(q.cancel(id2)); });
    id2 = q.add(10, 0, [&] { ++second; });
    q.run_expired(10);
    EXPECT_EQ(second, 0);
    EXPECT_EQ(q.last_fired(), 1u);
}

TEST(TimerQueue, EqualExpiriesFireInAddOrder)
{
    TimerQueue q;
    std::vector<int> order;
    for (int i = 0; i < 50; ++i)
        q.add(7, 0, [&order, i] { order.push_back(i); });
    q.run_expired(7);
    ASSERT_EQ(order.size(), 50u);
    for (int i = 0; i < 50; ++i)
        EXPECT_EQ(order[i], i);
}

TEST(TimerQueue, TimerAddedByCallbackRunsOnNextCall)
{
    TimerQueue q;
    int n = 0;
    std::function<void()> again = [&] {
        ++n;
        q.add(0, 0, again);  // already due: must not spin inside run_expired
    };
    q.add(5, 0, again);
    q.run_expired(5);
    EXPECT_EQ(n, 1);
    EXPECT_EQ(q.next_expiry(), 0);
    q.run_expired(5);
    EXPECT_EQ(n, 2);
}

TEST(TimerQueue, AddFromCallbackReallocatesSafely)
{
    TimerQueue q;
    int fired = 0;
    int seen = 0;
    q.add(1, 0, [&q, &fired, &seen, tag = 12345] {
        for (int i = 0; i < 1000; ++i)
            q.add(100 + i, 0, [&fired] { ++fired; });
        seen = tag;  // our captures must survive the slot vector growing
    });
    q.run_expired(1);
    EXPECT_EQ(seen, 12345);
    EXPECT_EQ(q.size(), 1000u);
    q.run_expired(2000);
    EXPECT_EQ(fired, 1000);
}

TEST(TimerQueue, TenThousandTimersRandomCancelsFireInOrder)
{
    TimerQueue q;
    std::mt19937 rng(42);
    const int kTimers = 10000;
    std::vector<TimerQueue::TimerId> ids(kTimers);
    std::vector<long long> when(kTimers);
    std::vector<bool> cancelled(kTimers, false);
    std::vector<int> fired;
    for (int i = 0; i < kTimers; ++i) {
        when[i] = static_cast<long long>(rng() % 5000);
        ids[i] = q.add(when[i], 0, [&fired, i] { fired.push_back(i); });
    }
    size_t live = kTimers;
    for (int i = 0; i < kTimers; ++i) {
        if (rng() % 3 == 0) {
            ASSERT_TRUE(q.cancel(ids[i]));
            cancelled[i] = true;
            --live;
        }
    }
    EXPECT_EQ(q.size(), live);
    // Expire in a few steps, as a loop would.
    for (long long now = 0; now <= 5000; now += 250)
        q.run_expired(now);
    ASSERT_EQ(fired.size(), live);
    for (size_t k = 0; k < fired.size(); ++k) {
        EXPECT_FALSE(cancelled[fired[k]]);
        if (k > 0) {
            int a = fired[k - 1], b = fired[k];
            ASSERT_TRUE(when[a] < when[b] || (when[a] == when[b] && a < b))
                << "timer " << b << " fired after " << a;
        }
    }
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.next_expiry(), -1);
}

TEST(TimerQueue, AddCancelChurnStaysCorrect)
{
    // The pattern of an idle timeout reset on every request: many
    // add+cancel pairs, few survivors. Exercises heap compaction.
    TimerQueue q;
    int fired = 0;
    // An early survivor keeps the cancelled ones off the top of the heap.
    TimerQueue::TimerId keep = q.add(1, 0, [&] { ++fired; });
    TimerQueue::TimerId id = 0;
    for (int i = 0; i < 200000; ++i) {
        if (id) {
            ASSERT_TRUE(q.cancel(id));
        }
        id = q.add(500000 + i, 0, [&] { ++fired; });
    }
    EXPECT_EQ(q.size(), 2u);
    EXPECT_EQ(q.next_expiry(), 1);
    q.run_expired(1);
    EXPECT_EQ(q.next_expiry(), 500000 + 199999);
    q.run_expired(2000000);
    EXPECT_EQ(fired, 2);
    EXPECT_FALSE(q.cancel(keep));
}
