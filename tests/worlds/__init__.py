"""Every world the tests build, in one place.

* :mod:`.factories`: tiny named geometries: a region chain and one community split into a WEST and
  an EAST small grid (most tests of one rule start here);
* :mod:`.city`: that community with one row of every registry table (the HTTP edge's ``city``);
* :mod:`.events`: the seed taxonomy over that community, named points, events reported in them;
* :mod:`.scope`: two streets with a row of every table each, for data-scope tests;
* :mod:`.grid_layout`: a community of 2 + 4 + 8 grids drawn in metres, as rows and files to import;
* :mod:`.grid_worker`: a grid worker and a small grid filled with buildings, households, residents;
* :mod:`.registry_tables`: rows and files of the registry importers (addresses, persons, units);
* :mod:`.demo`: the tiny demo city with a year of events, from the generators `make run` uses.
"""

from .demo import demo_year

__all__ = ["demo_year"]
