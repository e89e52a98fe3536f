// Just enough DOM for the Typewriter: elements with children, text nodes, a document.

class FakeNode {
  constructor(document) {
    this.ownerDocument = document;
    this.parentNode = null;
  }

  remove() {
    if (!this.parentNode) return;
    const siblings = this.parentNode.childNodes;
    siblings.splice(siblings.indexOf(this), 1);
    this.parentNode = null;
  }
}

class FakeText extends FakeNode {
  constructor(document, data) {
    super(document);
    this.data = data;
  }

  get textContent() {
    return this.data;
  }
}

class FakeElement extends FakeNode {
  constructor(document, tag) {
    super(document);
    this.tagName = tag.toUpperCase();
    this.childNodes = [];
    this.className = '';
    this.attributes = {};
    this._text = '';
  }

  get textContent() {
    return this.childNodes.length ? this.childNodes.map((n) => n.textContent).join('') : this._text;
  }

  set textContent(value) {
    this.childNodes = [];
    this._text = value;
  }

  setAttribute(name, value) {
    this.attributes[name] = value;
  }

  appendChild(node) {
    node.remove();
    node.parentNode = this;
    this.childNodes.push(node);
    return node;
  }

  replaceChildren(...nodes) {
    this.childNodes = [];
    for (const node of nodes) this.appendChild(node);
  }

  querySelector(selector) {
    const className = selector.replace(/^\./, '');
    return this.childNodes.find((n) => n instanceof FakeElement && n.className === className) ?? null;
  }
}

export function createDocument() {
  const document = {
    createTextNode: (data) => new FakeText(document, data),
    createElement: (tag) => new FakeElement(document, tag),
  };
  return document;
}
