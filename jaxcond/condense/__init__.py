"""The method (DConRec): candidate pool, proxy, budget, Bernoulli keep logits, inner training,
REINFORCE outer loop, long-tail compensation, rewards, and the choice of start and step."""
