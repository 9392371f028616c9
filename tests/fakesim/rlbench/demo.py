class Demo:
    def __init__(self, observations, random_seed=None, variation_number=0):
        self._observations, self.random_seed, self.variation_number = observations, random_seed, variation_number

    def __len__(self):
        return len(self._observations)

    def __getitem__(self, i):
        return self._observations[i]
