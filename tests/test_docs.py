"""Docs that cannot rot: every ```python block of README.md and docs/*.md runs here.

How a page is run (one test per page; new pages under docs/ are picked up by themselves):

- The page's pieces run top to bottom in one namespace (one per page), in a fresh temporary
  working directory, so later blocks see what earlier ones defined, exactly as a reader would.
- Runnable pieces are ```python blocks and hidden HTML comments that start with `<!-- setup`
  (imports, data, a key: what a reader can assume) or `<!-- check` (asserts on what the block
  above computed). GitHub does not render comments, so they cost the reader nothing:

      <!-- setup
      import jax, jaxlayers as jl
      x = jax.numpy.ones((2, 8))
      -->

  The namespace starts empty: a page declares its own imports (visibly or in a setup comment).
- A block tagged ```output right after a ```python block is what that block prints: its stdout
  must equal the block's text (trailing spaces ignored; a line `...` stands for any lines, and `...`
  inside a line for any text), so printed tables and error messages in the docs stay true.
- Every fence names its language. Anything not meant to run (shell, signatures, pseudo-code,
  printed text) uses another language (`bash`, `text`, ...), never `python`.
"""
import contextlib
import io
import pathlib
import re
import textwrap
import traceback

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
HIDDEN = re.compile(r"^<!--\s*(setup|check)\b[ \t:]*")


def pieces(text):
    """(kind, language, code, line) for every fenced block and hidden comment, in page order.
    kind is "fence" or "hidden"; line is 1-based, the first line of the code."""
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        hidden = HIDDEN.match(lines[i])
        if fence:
            mark, lang = fence.group(1), fence.group(2).strip().split(" ")[0]
            end = next((j for j in range(i + 1, len(lines))
                        if lines[j].strip().startswith(mark[0] * len(mark))
                        and not lines[j].strip().strip(mark[0])), None)
            if end is None:
                raise AssertionError(f"line {i + 1}: a ``` fence that is never closed")
            # a block inside a list item is indented as a whole: run it dedented
            out.append(("fence", lang, textwrap.dedent("\n".join(lines[i + 1:end])), i + 2))
            i = end + 1
        elif hidden:
            end = next((j for j in range(i, len(lines)) if "-->" in lines[j]), None)
            if end is None:
                raise AssertionError(f"line {i + 1}: a <!-- {hidden.group(1)} comment is never closed")
            body = [lines[i][hidden.end():]] + lines[i + 1:end + 1]
            body[-1] = body[-1][:body[-1].index("-->")]
            out.append(("hidden", "python", "\n".join(body), i + 1))
            i = end + 1
        else:
            i += 1
    return out


def _matches(expected, printed):
    """printed equals expected, line by line; a line `...` takes any lines, `...` in a line any text."""
    want = [line.rstrip() for line in expected.strip("\n").split("\n")]
    got = [line.rstrip() for line in printed.strip("\n").split("\n")]
    pattern = "".join(r"(?:.*\n)*?" if w.strip() == "..." else
                      ".*".join(map(re.escape, w.split("..."))) + r"\n" for w in want)
    return re.fullmatch(pattern, "\n".join(got) + "\n") is not None


def run_page(path, tmp_path, monkeypatch):
    """Run one page's pieces in order; fail naming the page, the line and the error."""
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"docs:{name}"}
    printed = None                       # stdout of the last python piece, for an ```output block
    for kind, lang, code, line in pieces(path.read_text()):
        if lang == "output":
            assert printed is not None, f"{name}:{line}: an ```output block must follow a ```python block"
            if not _matches(code, printed):
                pytest.fail(f"{name}:{line}: the ```output block differs from what the block above "
                            f"printed:\n--- documented\n{code}\n--- printed\n{printed}", pytrace=False)
            printed = None
            continue
        if lang != "python":
            printed = None
            continue
        buffer, trace = io.StringIO(), None
        try:
            compiled = compile("\n" * (line - 1) + code, str(name), "exec")
            with contextlib.redirect_stdout(buffer):
                exec(compiled, namespace)
        except Exception as error:        # the page's frames and below, not the harness's
            trace = "".join(traceback.format_exception(type(error), error, error.__traceback__.tb_next))
        if trace:
            pytest.fail(f"{name}:{line}: this {'hidden ' if kind == 'hidden' else ''}block failed:\n"
                        f"{trace}--- it printed:\n{buffer.getvalue()}", pytrace=False)
        printed = buffer.getvalue()


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_runs(path, tmp_path, monkeypatch):
    run_page(path, tmp_path, monkeypatch)


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_fence_names_its_language(path):
    """An untagged block could be Python nobody runs: say `python` (run) or what else it is."""
    untagged = [line - 1 for kind, lang, _, line in pieces(path.read_text()) if kind == "fence" and not lang]
    assert not untagged, f"{path.name}: fences without a language at lines {untagged} (use text, bash, ...)"


def _prose(text):
    """The page without its fenced blocks (links and headings inside code do not count)."""
    out, fence = [], None
    for line in text.split("\n"):
        match = FENCE.match(line)
        if match and fence is None:
            fence = match.group(1)[0] * len(match.group(1))
        elif fence is not None and line.strip().startswith(fence) and not line.strip().strip(fence[0]):
            fence = None
        elif fence is None:
            out.append(line)
    return "\n".join(out)


def _anchors(text):
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces -> '-'."""
    slugs = []
    for heading in re.findall(r"^#{1,6}\s+(.*?)\s*#*$", _prose(text), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        slugs.append(slug if slug not in slugs else f"{slug}-{slugs.count(slug)}")
    return set(slugs)


def broken_links(path, root=ROOT):
    """A link is relative, names a file that exists under root and, with #anchor, a heading in it."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(path.read_text())):
        file, _, anchor = target.partition("#")
        if re.match(r"[a-z]+:", file):
            broken.append(f"{target} (links stay inside the repository)")
            continue
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists() or root not in linked.parents:
            broken.append(f"{target} (no such file in the repository)")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked.read_text()):
            broken.append(f"{target} (no heading with that anchor)")
    return broken


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_in_the_repository_and_resolve(path):
    assert not broken_links(path), f"{path.name}: broken links: {broken_links(path)}"


def test_the_link_check_finds_broken_links(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other page\n## The `fit` loop\n```python\n# not a heading\n```\n")
    page.write_text("[a](other.md) [b](other.md#the-fit-loop) [c](#own-heading) [code](x.md)\n"
                    "# Own heading\n```text\n[d](in-code.md)\n```\n"
                    "[e](missing.md) [f](other.md#not-a-heading) [g](https://example.com) "
                    "[h](other.md#not-a-heading-1)\n")
    assert broken_links(page, tmp_path.resolve()) == [
        "x.md (no such file in the repository)", "missing.md (no such file in the repository)",
        "other.md#not-a-heading (no heading with that anchor)",
        "https://example.com (links stay inside the repository)",
        "other.md#not-a-heading-1 (no heading with that anchor)"]


def test_the_harness_runs_blocks_in_order_and_checks_output(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("<!-- setup\nx = 2\n-->\n```python\ny = x * 21\nprint('y =', y)\n```\n"
                    "```output\ny = ...\n```\n<!-- check: assert y == 42 -->\n"
                    "```text\nnot run: 1/0\n```\n```python\nprint('a')\nprint('b')\nprint('c')\n```\n"
                    "```output\na\n...\nc\n```\n")
    run_page(page, tmp_path, monkeypatch)
    page.write_text("```python\nprint('real')\n```\n```output\ndocumented\n```\n")
    with pytest.raises(pytest.fail.Exception, match="differs"):
        run_page(page, tmp_path, monkeypatch)
    page.write_text("```python\nz = 1\n```\n<!-- check\nassert z == 2\n-->\n")
    with pytest.raises(pytest.fail.Exception, match=r"page.md:4: this hidden block failed"):
        run_page(page, tmp_path, monkeypatch)
    page.write_text("```python\nx = 1\n```\n```python\nprint(x + undefined)\n```\n")
    with pytest.raises(pytest.fail.Exception, match=r"page.md:5: this block failed(.|\n)*NameError"):
        run_page(page, tmp_path, monkeypatch)
