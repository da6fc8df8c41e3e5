"""Regenerate the synthetic sample city in this folder: `python sample_data/generate.py`.

The data is SYNTHETIC (see README.md here). The generator lives in rtm.synthetic so
that tests and benchmarks build cities the same way.
"""

from pathlib import Path

from rtm.synthetic import generate_city, write_city

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    city = generate_city(seed=2024)
    write_city(city, here)
    print(f"wrote {len(city.crimes)} crimes and {len(city.factors)} factors to {here}")
