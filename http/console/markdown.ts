/**
 * Definition descriptions as Markdown, as Kuroko2's definition page renders them. Raw HTML in the text is escaped
 * (markdown-it's `html: false`), links with a script scheme are not made (its link validation), bare URLs are
 * linked, and links leave the console in a new tab without access to it.
 */
import MarkdownIt from 'markdown-it';
import { raw, type Html } from './html';

const markdown = new MarkdownIt({ html: false, linkify: true, breaks: true });
const renderLinkOpen = markdown.renderer.rules['link_open'];
markdown.renderer.rules['link_open'] = (tokens, index, options, env, self) => {
  const token = tokens[index]!;
  token.attrSet('target', '_blank');
  token.attrSet('rel', 'noopener noreferrer');
  return renderLinkOpen ? renderLinkOpen(tokens, index, options, env, self) : self.renderToken(tokens, index, options);
};

/** The description rendered; markdown-it escapes everything it does not produce itself. */
export function renderMarkdown(text: string): Html {
  return raw(markdown.render(text));
}
