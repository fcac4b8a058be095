package source

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/storage/memory"
)

// A fetch is all or nothing, and bounded while it streams in.
//
// go-git writes a fetched pack through storer.PackfileWriter when the
// storage offers it (packfile.UpdateObjectStorage). guardedStorage offers
// it: the pack's bytes go both to a checker, which reads each object's
// header (its inflated size, known before its content is inflated) and
// refuses the fetch as soon as the limits are crossed, and to go-git's own
// parser, which writes the objects into a staging storage. The staged
// objects join the repository's storage only when the whole pack parsed,
// checksum included: a fetch cut by a timeout or a dropped connection
// leaves nothing behind, so a later poll never mistakes a half-fetched
// commit for a complete one.

// fetchLimits bound what one fetch may bring in; a negative value is no
// limit.
type fetchLimits struct {
	// maxFile bounds each blob (a file of the tree).
	maxFile int64
	// maxFiles bounds the blobs of the fetch together. A shallow fetch of
	// one commit brings at most that commit's files, so a pack whose blobs
	// go over the repository limit holds a tree that does.
	maxFiles int64
	// maxObject bounds every object, of any type.
	maxObject int64
}

// noFetchLimits lets everything in.
var noFetchLimits = fetchLimits{maxFile: -1, maxFiles: -1, maxObject: -1}

func (l fetchLimits) none() bool { return l.maxFile < 0 && l.maxFiles < 0 && l.maxObject < 0 }

// guardedStorage is the remote's memory storage as go-git's fetch sees it.
// Callers serialize fetches (Source.mu) and set limits before each.
type guardedStorage struct {
	*memory.Storage
	limits fetchLimits
}

// PackfileWriter implements storer.PackfileWriter.
func (g *guardedStorage) PackfileWriter() (io.WriteCloser, error) {
	return newPackGuard(g.Storage, g.limits), nil
}

// packGuard checks and stages one pack as it is written. The bytes go to
// the checker; the checker hands them on to the parser only up to the start
// of the object whose header it has just accepted, so the parser never
// inflates an object the checker has not accepted (a small pack can hold
// an object that inflates to gigabytes).
type packGuard struct {
	main    *memory.Storage
	staged  *memory.Storage
	written int64

	checkW   *io.PipeWriter // go-git's writes -> the checker
	wg       sync.WaitGroup
	checkErr error
	parseErr error
}

func newPackGuard(main *memory.Storage, lim fetchLimits) *packGuard {
	g := &packGuard{main: main, staged: memory.NewStorage()}
	checkR, checkW := io.Pipe()
	parseR, parseW := io.Pipe()
	g.checkW = checkW
	g.wg.Add(2)
	go func() {
		defer g.wg.Done()
		g.checkErr = checkPack(checkR, parseW, lim, main)
		if g.checkErr != nil {
			checkR.CloseWithError(g.checkErr)
			parseW.CloseWithError(g.checkErr)
			return
		}
		parseW.Close()
	}()
	go func() {
		defer g.wg.Done()
		p, err := packfile.NewParserWithStorage(packfile.NewScanner(parseR), &stagedStorer{Storage: g.staged, base: main})
		if err == nil {
			_, err = p.Parse()
		}
		g.parseErr = err
		if err != nil {
			parseR.CloseWithError(err)
			return
		}
		_, _ = io.Copy(io.Discard, parseR) // whatever follows the pack
	}()
	return g
}

// Write implements io.Writer.
func (g *packGuard) Write(p []byte) (int, error) {
	if _, err := g.checkW.Write(p); err != nil {
		return 0, err
	}
	g.written += int64(len(p))
	return len(p), nil
}

// Close waits for the checker and the parser, and merges the staged
// objects into the repository's storage when both accepted the whole pack.
func (g *packGuard) Close() error {
	g.checkW.Close()
	g.wg.Wait()
	if g.written == 0 {
		return nil // no pack: go-git reports it
	}
	if g.checkErr != nil {
		return g.checkErr
	}
	if g.parseErr != nil {
		return fmt.Errorf("incomplete pack, discarded: %w", g.parseErr)
	}
	for _, obj := range g.staged.Objects {
		if _, err := g.main.SetEncodedObject(obj); err != nil {
			return err
		}
	}
	return nil
}

// holdback keeps the bytes the checker's scanner has read and not yet
// handed on to the parser.
type holdback struct {
	r       io.Reader
	pending []byte
	base    int64 // pack offset of pending[0]
}

func (h *holdback) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.pending = append(h.pending, p[:n]...)
	return n, err
}

// release hands on the bytes before pack offset off.
func (h *holdback) release(w io.Writer, off int64) error {
	n := off - h.base
	if n <= 0 {
		return nil
	}
	if n > int64(len(h.pending)) {
		n = int64(len(h.pending))
	}
	if _, err := w.Write(h.pending[:n]); err != nil {
		return err
	}
	h.pending = append(h.pending[:0], h.pending[n:]...)
	h.base += n
	return nil
}

// checkPack reads a pack from r and copies it to w, refusing it when it
// goes over lim: an object's inflated size is in its header, read before
// its content; for a delta, the size of the object it makes is in the
// first bytes of the (small) inflated delta. An object's bytes reach w only
// once its header is accepted.
func checkPack(r io.Reader, w io.Writer, lim fetchLimits, have *memory.Storage) error {
	if lim.none() {
		_, err := io.Copy(w, r)
		return err
	}
	h := &holdback{r: r}
	sc := packfile.NewScanner(h)
	_, count, err := sc.Header()
	if err != nil {
		return err
	}
	types := map[int64]plumbing.ObjectType{} // by offset, deltas resolved
	var files int64
	for range count {
		oh, err := sc.NextObjectHeader()
		if err != nil {
			return err
		}
		// Everything before this object belongs to accepted ones.
		if err := h.release(w, oh.Offset); err != nil {
			return err
		}
		typ, size := oh.Type, oh.Length
		switch oh.Type {
		case plumbing.OFSDeltaObject, plumbing.REFDeltaObject:
			if lim.maxObject >= 0 && oh.Length > lim.maxObject {
				return fmt.Errorf("%w: a delta of %d bytes is over the limit of %d bytes (refused while fetching)", ErrTooLarge, oh.Length, lim.maxObject)
			}
			var dh deltaHeader
			if _, _, err := sc.NextObject(&dh); err != nil {
				return err
			}
			size = dh.target
			typ = plumbing.BlobObject // unknown: counted as a file, the safe side
			if oh.Type == plumbing.OFSDeltaObject {
				if t, ok := types[oh.OffsetReference]; ok {
					typ = t
				}
			} else if obj, err := have.EncodedObject(plumbing.AnyObject, oh.Reference); err == nil {
				typ = obj.Type()
			}
		}
		types[oh.Offset] = typ
		if typ == plumbing.BlobObject {
			if lim.maxFile >= 0 && size > lim.maxFile {
				return fmt.Errorf("%w: a file of %d bytes is over the per-file limit of %d bytes (refused while fetching)", ErrTooLarge, size, lim.maxFile)
			}
			files += size
			if lim.maxFiles >= 0 && files > lim.maxFiles {
				return fmt.Errorf("%w: the repository goes over its limit of %d bytes (refused while fetching, after %d bytes of files)", ErrTooLarge, lim.maxFiles, files)
			}
		}
		if lim.maxObject >= 0 && size > lim.maxObject {
			return fmt.Errorf("%w: a %s of %d bytes is over the limit of %d bytes (refused while fetching)", ErrTooLarge, typ, size, lim.maxObject)
		}
	}
	if _, err := sc.Checksum(); err != nil {
		return err
	}
	if err := h.release(w, h.base+int64(len(h.pending))); err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	return err
}

// deltaHeader decodes the two sizes a Git delta starts with (the base's,
// then the target's), little-endian base-128 varints, and discards the rest.
type deltaHeader struct {
	n      int // varints complete
	shift  uint
	cur    int64
	target int64
}

func (d *deltaHeader) Write(p []byte) (int, error) {
	for _, c := range p {
		if d.n == 2 {
			break
		}
		if d.shift < 63 {
			d.cur |= int64(c&0x7f) << d.shift
		}
		d.shift += 7
		if c&0x80 != 0 {
			continue
		}
		d.n++
		if d.n == 2 {
			d.target = d.cur
		}
		d.cur, d.shift = 0, 0
	}
	return len(p), nil
}

// stagedStorer writes to a staging storage and reads from it, then from
// the repository's storage (the bases of a thin pack's deltas).
type stagedStorer struct {
	*memory.Storage
	base *memory.Storage
}

func (s *stagedStorer) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	obj, err := s.Storage.EncodedObject(t, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return s.base.EncodedObject(t, h)
	}
	return obj, err
}

func (s *stagedStorer) HasEncodedObject(h plumbing.Hash) error {
	if err := s.Storage.HasEncodedObject(h); err == nil {
		return nil
	}
	return s.base.HasEncodedObject(h)
}

func (s *stagedStorer) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	if n, err := s.Storage.EncodedObjectSize(h); err == nil {
		return n, nil
	}
	return s.base.EncodedObjectSize(h)
}
