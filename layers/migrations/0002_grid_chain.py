"""The view ``layers_grid_chain``: each small grid with its medium and large grid, community,
street and district code, so linking a point is one join (layers/services/linking.py)."""

from django.db import migrations

CREATE = """
CREATE VIEW layers_grid_chain AS
SELECT small.id AS grid_id,
       medium.id AS grid_medium_id,
       medium.parent_id AS grid_large_id,
       small.community_id,
       community.parent_id AS street_id,
       district.code AS district_code
FROM layers_grid small
LEFT JOIN layers_grid medium ON medium.id = small.parent_id
JOIN layers_region community ON community.id = small.community_id
LEFT JOIN layers_region street ON street.id = community.parent_id
LEFT JOIN layers_region district ON district.id = street.parent_id
WHERE small.level = 'small'
"""


class Migration(migrations.Migration):
    dependencies = [("layers", "0001_initial")]
    operations = [migrations.RunSQL(CREATE, "DROP VIEW layers_grid_chain")]
