from trainer.sampler import PromptSampler


def test_each_epoch_visits_every_prompt_once():
    sampler = PromptSampler(dataset_size=5, seed=3)
    first, second = sampler.next(5), sampler.next(5)
    assert sorted(first) == sorted(second) == [0, 1, 2, 3, 4]
    assert first != second  # a new permutation per epoch (seeded; fixed for seed 3)


def test_resuming_from_a_position_replays_the_same_order():
    straight = PromptSampler(dataset_size=7, seed=11)
    batches = [straight.next(3) for _ in range(5)]  # crosses two epoch boundaries
    resumed = PromptSampler(dataset_size=7, seed=11, position=9)
    assert [resumed.next(3) for _ in range(2)] == batches[3:]


def test_different_seeds_give_different_orders():
    assert PromptSampler(50, seed=1).next(50) != PromptSampler(50, seed=2).next(50)
