#!/usr/bin/env bash
# Refreshes the message catalogs from the code: msgids are English, written in templates
# ({% translate %}), Python (gettext) and our JS (Minqing.t / gettext). Then:
#   locale/zh_Hans/LC_MESSAGES/{django,djangojs}.po  translate every new entry by hand (msgstr);
#   locale/en/LC_MESSAGES/{django,djangojs}.po       filled here: msgstr = msgid (msgen).
# tests/mapserver/test_i18n.py fails while an entry is untranslated or fuzzy, or a catalog is
# out of date. setup.sh compiles the .mo files (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
ignore=(--ignore=node_modules --ignore=var --ignore=.venv --ignore=tests --ignore=scripts)
$py manage.py makemessages -v0 --no-obsolete --no-location --no-wrap -l zh_Hans -l en -d django "${ignore[@]}"
$py manage.py makemessages -v0 --no-obsolete --no-location --no-wrap -l zh_Hans -l en -d djangojs "${ignore[@]}" \
    --ignore='*.min.js'
for domain in django djangojs; do
  # msgmerge's guesses for new msgids ("fuzzy", from a similar old one) are mostly wrong here:
  # a new msgid starts untranslated instead.
  for catalog in locale/*/LC_MESSAGES/$domain.po; do
    msgattrib --no-wrap --clear-fuzzy --empty --clear-previous -o "$catalog" "$catalog"
  done
  catalog=locale/en/LC_MESSAGES/$domain.po
  [ -f "$catalog" ] && msgen --no-wrap -o "$catalog" "$catalog"
done
$py manage.py compilemessages -v0 --ignore=node_modules --ignore=var --ignore=.venv
for catalog in locale/zh_Hans/LC_MESSAGES/*.po; do
  echo "$catalog: $(msgfmt --statistics -o /dev/null "$catalog" 2>&1)"
done
