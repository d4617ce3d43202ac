"""The course's nbgrader configuration (``autograder/nbgrader_config.py``, which stock nbgrader
reads from ``autograder/``) and nbgrader's API over it, from any working directory."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

CONFIG_FILE = Path(__file__).resolve().parents[1] / "nbgrader_config.py"


def load_config() -> Config:
    from traitlets.config.loader import PyFileConfigLoader
    return PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent)).load_config()


def make_api(config: Config | None = None) -> NbGraderAPI:
    from nbgrader.apps import NbGraderAPI
    speed_up_nbgrader()
    config = config if config is not None else load_config()
    return NbGraderAPI(coursedir=_course_directory(config), config=config)


def _course_directory(config):
    """nbgrader's CourseDirectory, except that a submission's unreadable ``timestamp.txt`` (a
    stray byte, a huge file) counts as no timestamp instead of failing the whole submission."""
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import parse_utc

    class LenientCourseDirectory(CourseDirectory):
        def get_existing_timestamp(self, dest_path):
            path = os.path.join(dest_path, "timestamp.txt")
            try:
                with open(path, "rb") as f:
                    text = f.read(200).decode().strip()
                return parse_utc(text) if text else None
            except FileNotFoundError:
                return None
            except Exception:
                self.log.warning("unreadable timestamp, graded as having none: %s", path)
                return None

    return LenientCourseDirectory(config=config)


# ---- nbgrader's Gradebook, opened without redoing its schema work ------------------------------

def _kept_database(db_url: str) -> bool:
    """A database that outlives its connections: any but an in-memory SQLite one."""
    from sqlalchemy.engine import make_url
    try:
        url = make_url(db_url)
    except Exception:
        return False
    return not url.drivername.startswith("sqlite") or (bool(url.database) and url.database != ":memory:")


_SERVER = ("server",)  # the identity of a database server's gradebook (PostgreSQL, MySQL)


def _database_identity(db_url: str) -> tuple | None:
    """(device, inode) of an SQLite gradebook's file; ``_SERVER`` for a database server's; None
    for an in-memory database or a file that is not there."""
    from sqlalchemy.engine import make_url
    try:
        url = make_url(db_url)
        if not url.drivername.startswith("sqlite"):
            return _SERVER
        if not url.database or url.database == ":memory:":
            return None
        info = os.stat(url.database)
    except Exception:
        return None
    return info.st_dev, info.st_ino


_KEPT: dict = {}  # what ``speed_up_nbgrader`` keeps: its engines and the gradebooks found ready


def release_gradebook_connections() -> None:
    """Return a database server's pooled connections and forget that its gradebook was found
    ready, so that the next opening connects and checks afresh. A Dask task calls it when it
    ends, and the feedback renderer after each request: between tasks a worker holds no
    connection to the gradebook server (a cluster of many workers would otherwise keep one open
    each). An SQLite file's engine is left as it is."""
    lock = _KEPT.get("lock")
    if lock is None:
        return
    with lock:
        for (url, course) in [k for k, v in _KEPT["known"].items() if v == _SERVER]:
            _KEPT["known"].pop((url, course), None)
        for url, engine in _KEPT["engines"].items():
            if _KEPT["made_for"].get(url) == _SERVER:
                engine.dispose()  # connections in use are closed when they are given back


def speed_up_nbgrader() -> None:
    """Three of nbgrader's costs, without changing what it does.

    nbgrader opens ``Gradebook(db_url)`` about ten times per graded notebook (each preprocessor,
    each API call), and each opening makes an engine, inspects the schema, runs ``create_all``
    and checks the course row: 0.3 s of every notebook's 0.6 s in ``autograde`` (``python -m
    cProfile -m autograder grade``). Here a gradebook (SQLite file, PostgreSQL) whose tables and
    course row two queries find is opened on its kept engine with a plain session; any other (a
    new file, a missing table or course, an in-memory database) goes nbgrader's own way. An
    SQLite file found ready is known by its device and inode: while it is the same file, it is
    opened without those two queries, and ``close`` returns its connections to the engine's pool
    instead of closing them (nbgrader's ``close`` disposes of the pool: a new connection, and
    SQLite's schema read again, at each of the ten openings). A file deleted and made again is a
    new inode (the pool's open connections keep the old one's number taken), so it is checked
    afresh. A server's gradebook (PostgreSQL: the cluster's) found ready is opened the same way
    until ``release_gradebook_connections``, which a Dask task calls when it ends; its engine
    pings a pooled connection before using it (``pool_pre_ping``: a server restarted meanwhile
    costs a new connection, not an error). Before, each of a cluster task's ten openings
    connected anew and read the schema: 0.40 s of nbgrader per submission on a worker, against
    0.06 s on an SQLite file.

    nbgrader asks ``alembic heads`` (a subprocess, 3 s) for a new gradebook's schema version:
    here it is read once per process from nbgrader's migration scripts, in this process. And
    its cell-metadata validation keeps one validator (below)."""
    import nbgrader.api as nb_api
    if getattr(nb_api.Gradebook, "_bn_fast", False):
        return
    import threading

    from sqlalchemy import create_engine, text
    from sqlalchemy import inspect as sa_inspect
    from sqlalchemy.orm import scoped_session, sessionmaker
    original_init, original_version = nb_api.Gradebook.__init__, nb_api.get_alembic_version
    original_close = nb_api.Gradebook.close
    # One engine per database, kept: SQLAlchemy caches each statement's compiled form on its
    # engine, and nbgrader's ~75 queries per notebook were compiled afresh with every opening
    # (``close`` disposes of the engine's connections, not of the engine).
    engines: dict = {}
    known: dict = {}  # (url, course) -> (device, inode) of the SQLite file found ready, or _SERVER
    made_for: dict = {}  # url -> (device, inode) of the file its kept engine has connected to, or _SERVER
    lock = threading.Lock()
    _KEPT.update(engines=engines, known=known, made_for=made_for, lock=lock)
    tables = set(nb_api.Base.metadata.tables) | {"alembic_version"}
    heads: list[str] = []

    def get_alembic_version() -> str:
        if not heads:
            try:
                from alembic.config import Config as AlembicConfig
                from alembic.script import ScriptDirectory
                cfg = AlembicConfig()
                cfg.set_main_option("script_location", str(Path(nb_api.__file__).parent / "alembic"))
                heads.append(ScriptDirectory.from_config(cfg).get_current_head())
            except Exception:
                heads.append(original_version())
        return heads[0]

    def __init__(self, db_url, course_id="default_course", authenticator=None):
        if not _kept_database(db_url):
            return original_init(self, db_url, course_id, authenticator)
        file = _database_identity(db_url)
        with lock:
            engine = engines.get(db_url)
            if engine is not None and file is not None and known.get((db_url, course_id)) == file:
                self._open(engine, course_id, authenticator, pooled=True)
                return None
            if engine is not None and file != made_for.get(db_url):
                engine.dispose()  # its pooled connections may hold an earlier file of that name
                made_for[db_url] = file
        if engine is None:
            engine = create_engine(db_url, echo=False, future=True, pool_pre_ping=file == _SERVER)
        try:
            with engine.connect() as conn:
                ready = tables <= set(sa_inspect(conn).get_table_names()) and conn.execute(
                    text("SELECT 1 FROM course WHERE id = :id"), {"id": course_id}).first() is not None
        except Exception:
            ready = False
        with lock:
            if not ready:
                known.pop((db_url, course_id), None)
                engine.dispose()
                engines.pop(db_url, None)
                made_for.pop(db_url, None)
            else:
                kept = engines.setdefault(db_url, engine)
                if kept is engine:
                    made_for.setdefault(db_url, file)
                else:  # another thread kept one first
                    engine.dispose()
                    engine = kept
                pooled = file is not None and file == made_for.get(db_url) == _database_identity(db_url)
                if pooled:
                    known[(db_url, course_id)] = file
        if not ready:
            return original_init(self, db_url, course_id, authenticator)
        self._open(engine, course_id, authenticator, pooled)

    def _open(self, engine, course_id, authenticator, pooled):
        self.engine, self._bn_pooled = engine, pooled
        self.db = scoped_session(sessionmaker(autoflush=True, bind=engine, future=True))
        self.course_id = course_id
        self.authenticator = authenticator

    def close(self):
        if getattr(self, "_bn_pooled", False):
            self.db.remove()  # the connections go back to the kept engine's pool
        else:
            original_close(self)

    _validate_metadata_with_one_validator()
    nb_api.get_alembic_version = get_alembic_version
    nb_api.Gradebook.__init__ = __init__
    nb_api.Gradebook.close = close
    nb_api.Gradebook._open = _open
    nb_api.Gradebook._bn_fast = True


def _validate_metadata_with_one_validator() -> None:
    """nbgrader validates every cell's nbgrader metadata with ``jsonschema.validate(meta, schema)``,
    which checks the schema itself against its metaschema on every call: 3 ms a cell, 50 ms a
    notebook, twice per notebook. The same check, with the schema checked once and its validator
    kept (``jsonschema.validate`` is ``check_schema``, then the best-matching error raised). nbgrader
    loads the schema afresh for every notebook, so it is known by its JSON text. And a class's
    cells carry the same few metadata (the released notebook's, each checked twice per
    submission): a metadata found valid is remembered by its JSON text (``json.dumps`` tells
    ``true``, ``1`` and ``1.0`` apart, as the schema's types do) and not validated again."""
    import json
    import threading

    import jsonschema
    from nbgrader.nbgraderformat import common
    texts: dict = {}  # id(schema) -> (schema, its JSON text): the same dict is not dumped twice
    kept: dict = {}  # schema's JSON text -> its validator
    valid: dict = {}  # (schema's JSON text, metadata's) -> True, bounded
    lock = threading.Lock()

    def validate(instance, schema, *args, **kwargs):
        if args or kwargs:
            return jsonschema.validate(instance, schema, *args, **kwargs)
        named = texts.get(id(schema))
        if named is None or named[0] is not schema:
            named = (schema, json.dumps(schema, sort_keys=True))
            with lock:
                if len(texts) >= 64:
                    texts.clear()
                texts[id(schema)] = named
        key = named[1]
        checker = kept.get(key)
        if checker is None:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            checker = kept[key] = cls(schema)
        try:
            text = json.dumps(instance, sort_keys=True)
        except (TypeError, ValueError):  # not JSON (a notebook read from disk always is)
            text = None
        if text is not None and (key, text) in valid:
            return
        error = jsonschema.exceptions.best_match(checker.iter_errors(instance))
        if error is not None:
            raise error
        if text is not None:
            with lock:
                if len(valid) >= 4096:
                    valid.clear()
                valid[(key, text)] = True

    class _Jsonschema:
        def __getattr__(self, name):
            return validate if name == "validate" else getattr(jsonschema, name)
    common.jsonschema = _Jsonschema()
