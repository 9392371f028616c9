class Identity:
    def apply(self, val):
        return val
