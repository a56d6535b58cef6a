"""bertc's random number generator in Python (see src/util/rng.h): xoshiro256** seeded by
splitmix64, rejection sampling for rng_below, Fisher-Yates from the end for shuffles."""

M64 = (1 << 64) - 1


class Rng:
    def __init__(self, seed: int):
        x = seed & M64
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & M64

    def next(self) -> int:
        s = self.s
        result = (self._rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def below(self, n: int) -> int:
        mask = (1 << (n - 1).bit_length()) - 1 if n > 1 else 0
        while True:
            x = self.next() & mask
            if x < n:
                return x

    def uniform(self):
        """rng_uniform: the top 24 bits as a float32 in [0, 1)."""
        import numpy as np
        return np.float32(self.next() >> 40) * np.float32(1.0 / 16777216.0)

    def normal(self):
        """rng_normal: Box-Muller in float32, as the C code computes it (libm may differ by an ulp)."""
        import numpy as np
        u1, u2 = self.uniform(), self.uniform()
        u1 = max(u1, np.float32(1e-30))
        return np.sqrt(np.float32(-2.0) * np.log(u1)) * np.cos(np.float32(6.28318530717958647692) * u2)

    def shuffle(self, a: list) -> None:
        for i in range(len(a), 1, -1):
            j = self.below(i)
            a[i - 1], a[j] = a[j], a[i - 1]


if __name__ == "__main__":
    r = Rng(42)
    print([hex(r.next()) for _ in range(3)])
